"""The trust root: the embedded public-good root, imports, named roots, show()."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from safedocker.errors import ConfigError
from safedocker.policy.paths import Paths
from safedocker.trust.roots import (
    DEFAULT_NAME,
    EMBEDDED_SOURCE,
    embedded_trust_root,
    import_trust_root,
    load_trust_root,
    parse_time,
    parse_trust_root,
    show,
    trust_root,
)
from tests.sigstore_world import SigstoreWorld

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

PUBLIC_GOOD_REKOR_LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"


@pytest.fixture
def where(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "config", tmp_path / "cache", tmp_path / "state", tmp_path / "etc")


def test_embedded_root_is_read_from_the_sigstore_package_and_names_public_good_services() -> None:
    root = embedded_trust_root()
    assert root.source == EMBEDDED_SOURCE
    assert root.tlog(PUBLIC_GOOD_REKOR_LOG_ID) is not None
    assert f"sha256:{PUBLIC_GOOD_REKOR_LOG_ID}" in {k.fingerprint for k in root.rekor_keys}
    assert any(ca.uri == "https://fulcio.sigstore.dev" for ca in root.certificate_authorities)
    assert root.has_ctlogs
    # the CA chain runs intermediate first, self-signed root last
    for ca in root.certificate_authorities:
        assert ca.root.subject == ca.root.issuer


def test_without_an_import_the_default_root_is_the_embedded_one(where: Paths) -> None:
    assert trust_root(where).source == EMBEDDED_SOURCE


def test_import_validates_then_saves_under_its_name_and_is_used(
        where: Paths, tmp_path: Path,
) -> None:
    world = SigstoreWorld()
    source = tmp_path / "trusted_root.json"
    source.write_bytes(world.trusted_root_json())
    imported = import_trust_root(where, source, name="corp")
    saved = where.trust_roots_dir / "corp.json"
    assert saved.read_bytes() == source.read_bytes()
    assert imported.outcome == "imported"
    assert trust_root(where, "corp").raw == imported.root.raw
    assert trust_root(where).source == EMBEDDED_SOURCE  # default untouched


def test_import_of_an_invalid_root_writes_nothing(where: Paths, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    document = json.loads(SigstoreWorld().trusted_root_json())
    document["tlogs"][0]["publicKey"]["rawBytes"] = "bm90IGEga2V5"
    bad.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="invalid"):
        import_trust_root(where, bad)
    assert not (where.trust_roots_dir / f"{DEFAULT_NAME}.json").exists()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(mediaType="application/json"),
        lambda d: d["certificateAuthorities"][0]["certChain"]["certificates"].reverse(),
        lambda d: d["tlogs"][0]["publicKey"].update(validFor={"start": "yesterday"}),
        lambda d: d.update(tlogs=[], certificateAuthorities=[]),
        lambda d: d["ctlogs"][0]["logId"].update(keyId="***"),
    ],
)
def test_malformed_roots_are_config_errors(mutate: Callable[[dict[str, Any]], object]) -> None:
    document = json.loads(SigstoreWorld().trusted_root_json())
    mutate(document)
    with pytest.raises(ConfigError):
        parse_trust_root(json.dumps(document).encode())


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="duplicate"):
        parse_trust_root(b'{"mediaType": "x", "mediaType": "y"}')


def test_unknown_named_root_is_a_config_error(where: Paths) -> None:
    with pytest.raises(ConfigError, match="no trust root named"):
        trust_root(where, "nope")
    with pytest.raises(ConfigError, match="invalid trust root name"):
        trust_root(where, "../etc/passwd")


def test_show_says_what_is_trusted_and_how_old(where: Paths, tmp_path: Path) -> None:
    source = tmp_path / "root.json"
    source.write_bytes(SigstoreWorld().trusted_root_json())
    import_trust_root(where, source, name="corp")
    shown = {entry["name"]: entry for entry in show(where)}
    assert shown["default"]["source"] == EMBEDDED_SOURCE
    assert shown["default"]["file_mtime"] is None
    assert shown["default"]["newest_valid_from"]
    assert shown["corp"]["file_mtime"] is not None
    assert shown["corp"]["tlogs"][0]["url"] == "https://rekor.world.test"
    assert shown["corp"]["certificate_authorities"][0]["chain"][0]["subject"]
    json.dumps(shown)  # JSON-ready


def test_load_trust_root_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(SigstoreWorld().trusted_root_json())
    assert load_trust_root(path).name == "x"


def test_times_with_fractions_and_offsets_parse() -> None:
    assert parse_time("2022-12-31T23:59:59.999Z").microsecond == 999000
    assert parse_time("2022-01-01T02:00:00+02:00").hour == 0
    with pytest.raises(ValueError):
        parse_time("2022-01-01")


# --- no root is displaced silently (issue 12) ----------------------------------------------


@pytest.fixture(scope="module")
def two_worlds() -> tuple[SigstoreWorld, SigstoreWorld]:
    return SigstoreWorld(), SigstoreWorld()


def _file(tmp_path: Path, name: str, raw: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


def test_an_unnamed_import_of_another_deployment_never_displaces_the_built_in_root(
        where: Paths, tmp_path: Path, two_worlds: tuple[SigstoreWorld, SigstoreWorld]) -> None:
    private = _file(tmp_path, "private.json", two_worlds[0].trusted_root_json())
    with pytest.raises(ConfigError, match="refusing to replace the trusted root 'default'") as e:
        import_trust_root(where, private)
    assert "--name NAME" in e.value.line() and "--replace" in e.value.line()
    assert not (where.trust_roots_dir / "default.json").exists()
    assert trust_root(where).source == EMBEDDED_SOURCE
    replaced = import_trust_root(where, private, replace=True)
    assert replaced.outcome == "replaced" and replaced.previous == EMBEDDED_SOURCE


def test_an_unnamed_second_deployment_is_refused_and_the_first_stays(
        where: Paths, tmp_path: Path, two_worlds: tuple[SigstoreWorld, SigstoreWorld]) -> None:
    first, second = two_worlds
    first_file = _file(tmp_path, "first.json", first.trusted_root_json())
    import_trust_root(where, first_file, replace=True)
    with pytest.raises(ConfigError, match="another Sigstore deployment"):
        import_trust_root(where, _file(tmp_path, "second.json", second.trusted_root_json()))
    assert trust_root(where).raw == first_file.read_bytes()
    named = import_trust_root(where, tmp_path / "second.json", name="second")
    assert named.outcome == "imported"
    assert trust_root(where, "second").raw == second.trusted_root_json()


def test_the_same_deployment_again_or_newer_updates_and_an_older_one_is_refused(
        where: Paths, tmp_path: Path, two_worlds: tuple[SigstoreWorld, SigstoreWorld]) -> None:
    world = two_worlds[0]
    plain = _file(tmp_path, "plain.json", world.trusted_root_json())
    newer = _file(tmp_path, "newer.json", world.trusted_root_json(with_rekor_v2=True,
                                                                   with_tsa=True))
    assert import_trust_root(where, plain, name="corp").outcome == "imported"
    assert import_trust_root(where, plain, name="corp").outcome == "updated"
    # More anchors (a new log, a TSA) is a new trust decision: --replace (A2-1).
    with pytest.raises(ConfigError, match="adds 2 trust anchors"):
        import_trust_root(where, newer, name="corp")
    assert import_trust_root(where, newer, name="corp", replace=True).outcome == "replaced"
    with pytest.raises(ConfigError, match="another Sigstore deployment"):
        import_trust_root(where, plain, name="corp")  # drops the v2 log and the TSA
    assert trust_root(where, "corp").raw == newer.read_bytes()


def test_the_public_good_root_updates_the_built_in_default(where: Paths, tmp_path: Path) -> None:
    from safedocker.trust.roots import embedded_trust_root_bytes

    copy = _file(tmp_path, "trusted_root.json", embedded_trust_root_bytes())
    assert import_trust_root(where, copy).outcome == "updated"
    assert import_trust_root(where, copy, system=True).outcome == "updated"


def _public_good() -> dict[str, Any]:
    from safedocker.trust.roots import embedded_trust_root_bytes

    doc: dict[str, Any] = json.loads(embedded_trust_root_bytes())
    return doc


def test_the_public_good_root_plus_a_foreign_ca_and_logs_never_updates_default(
        where: Paths, tmp_path: Path, two_worlds: tuple[SigstoreWorld, SigstoreWorld]) -> None:
    # A2-1: a superset kept every installed anchor, so it was "the same deployment"; a
    # certificate the foreign CA minted for a public GitHub identity then verified.
    doc = _public_good()
    foreign = json.loads(two_worlds[0].trusted_root_json())
    for key in ("certificateAuthorities", "tlogs", "ctlogs"):
        doc[key] = doc.get(key, []) + foreign[key]
    superset = _file(tmp_path, "superset.json", json.dumps(doc).encode())
    with pytest.raises(ConfigError, match="refusing to replace the trusted root 'default'") as e:
        import_trust_root(where, superset)
    assert "adds 3 trust anchors" in e.value.line() and "--replace" in e.value.line()
    assert not (where.trust_roots_dir / "default.json").exists()
    assert trust_root(where).source == EMBEDDED_SOURCE


def test_re_opening_the_validity_of_a_retired_anchor_never_updates_default(
        where: Paths, tmp_path: Path) -> None:
    doc = _public_good()
    reopened = 0
    for key in ("certificateAuthorities", "tlogs", "ctlogs"):
        for entry in doc.get(key, []):
            for window in (entry.get("validFor"), entry.get("publicKey", {}).get("validFor")):
                if isinstance(window, dict) and "end" in window:
                    del window["end"]
                    reopened += 1
    assert reopened  # the public-good root has retired anchors
    path = _file(tmp_path, "reopened.json", json.dumps(doc).encode())
    with pytest.raises(ConfigError, match="widens the validity"):
        import_trust_root(where, path)
    assert not (where.trust_roots_dir / "default.json").exists()


def test_an_earlier_start_widens_a_window_too_and_ending_one_narrows_it(
        where: Paths, tmp_path: Path) -> None:
    doc = _public_good()
    doc["tlogs"][0]["publicKey"]["validFor"]["start"] = "2000-01-01T00:00:00Z"
    with pytest.raises(ConfigError, match="widens the validity"):
        import_trust_root(where, _file(tmp_path, "earlier.json", json.dumps(doc).encode()))
    doc = _public_good()
    open_ended = next(log for log in doc["tlogs"] if "end" not in log["publicKey"]["validFor"])
    open_ended["publicKey"]["validFor"]["end"] = "2030-01-01T00:00:00Z"
    narrowed = _file(tmp_path, "narrowed.json", json.dumps(doc).encode())
    assert import_trust_root(where, narrowed).outcome == "updated"


def test_list_says_where_each_root_comes_from_and_which_one_is_used(
        where: Paths, tmp_path: Path, two_worlds: tuple[SigstoreWorld, SigstoreWorld]) -> None:
    from safedocker.trust.roots import list_roots, remove_trust_root

    raw = two_worlds[0].trusted_root_json()
    import_trust_root(where, _file(tmp_path, "a.json", raw), name="corp")
    import_trust_root(where, tmp_path / "a.json", name="corp", system=True)
    rows = {(e.name, e.origin): e.in_use for e in list_roots(where)}
    assert rows == {("corp", "system"): True, ("corp", "user"): False,
                    ("default", "built-in"): True}
    assert {row["name"]: row["origin"] for row in show(where)} == {"corp": "system",
                                                                   "default": "built-in"}
    remove_trust_root(where, "corp", system=True)
    assert {(e.name, e.origin): e.in_use for e in list_roots(where)}[("corp", "user")]
    from safedocker.errors import UsageError

    with pytest.raises(UsageError, match="no system trusted root named 'corp'"):
        remove_trust_root(where, "corp", system=True)


def test_system_rules_roots_come_from_the_system_or_the_built_in_never_the_user(
        where: Paths, tmp_path: Path, two_worlds: tuple[SigstoreWorld, SigstoreWorld]) -> None:
    from safedocker.trust.roots import system_trust_root

    raw = two_worlds[0].trusted_root_json()
    import_trust_root(where, _file(tmp_path, "a.json", raw), replace=True)
    import_trust_root(where, tmp_path / "a.json", name="corp")
    assert trust_root(where).raw == raw  # a user rule: the user's default
    assert system_trust_root(where.system_trust_roots_dir).source == EMBEDDED_SOURCE
    with pytest.raises(ConfigError, match="no system trusted root named 'corp'"):
        system_trust_root(where.system_trust_roots_dir, "corp")
    import_trust_root(where, tmp_path / "a.json", name="corp", system=True)
    assert system_trust_root(where.system_trust_roots_dir, "corp").raw == raw
