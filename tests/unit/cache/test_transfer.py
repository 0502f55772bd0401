"""The cache's export/import file: round trips, newer local facts kept, damage refused whole."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest

from safedocker.cache.store import Cache
from safedocker.cache.transfer import ImportSummary, export_cache, import_cache
from safedocker.errors import CacheError
from safedocker.reference import Digest
from tests.unit.cache.test_store import (
    CONFIG,
    CONFIG_DIGEST,
    MANIFEST,
    MANIFEST_DIGEST,
    NAME,
    OCI_MANIFEST,
)

if TYPE_CHECKING:
    from pathlib import Path


def fill(c: Cache) -> None:
    c.record_tag(NAME, "24.04", MANIFEST_DIGEST, seen_at=100.0)
    c.put_material(NAME, MANIFEST_DIGEST, "cosign-sig", b'{"sig":"material"}')
    c.put_manifest(MANIFEST_DIGEST, OCI_MANIFEST, MANIFEST)
    c.put_config(CONFIG_DIGEST, CONFIG)


def test_export_import_round_trip_carries_material_but_no_verdict(tmp_path: Path) -> None:
    export = tmp_path / "out" / "cache.jsonl"
    export.parent.mkdir()
    with Cache.open(tmp_path / "a") as a:
        fill(a)
        # A verdict record of the warm path (cache/verdicts.py) beside the database.
        (tmp_path / "a" / "verdicts").mkdir(mode=0o700)
        (tmp_path / "a" / "verdicts" / ("a" * 64 + ".json")).write_text(
            '{"name": "VERDICT-MARK", "records": []}')
        summary = export_cache(a, export)
    assert (summary.tags, summary.material, summary.manifests, summary.configs) == (1, 1, 1, 1)
    assert [p.name for p in export.parent.iterdir()] == ["cache.jsonl"]  # no temp file left
    assert '"type":"root"' not in export.read_text()  # no trust anchor ever leaves
    assert "VERDICT-MARK" not in export.read_text()  # nor a decision

    with Cache.open(tmp_path / "b") as b:
        result = import_cache(b, export)
        assert result == ImportSummary(1, 1, 1, 1)
        tag = b.lookup_tag(NAME, "24.04")
        assert tag is not None and tag.digest == MANIFEST_DIGEST and tag.seen_at == 100.0
        material = b.get_material(NAME, MANIFEST_DIGEST, "cosign-sig")
        assert material is not None and material.data == b'{"sig":"material"}'
        manifest = b.get_manifest(MANIFEST_DIGEST)
        assert manifest is not None and manifest.data == MANIFEST
        config = b.get_config(CONFIG_DIGEST)
        assert config is not None and config.data == CONFIG
    # An import never carries a decision: the caller must re-verify the material.
    assert not (tmp_path / "b" / "verdicts").exists()


def test_import_keeps_a_newer_local_tag_mapping(tmp_path: Path) -> None:
    export = tmp_path / "cache.jsonl"
    with Cache.open(tmp_path / "a") as a:
        a.record_tag(NAME, "24.04", MANIFEST_DIGEST, seen_at=100.0)
        export_cache(a, export)
    newer = Digest.of(b"newer")
    with Cache.open(tmp_path / "b") as b:
        b.record_tag(NAME, "24.04", newer, seen_at=200.0)
        import_cache(b, export)
        tag = b.lookup_tag(NAME, "24.04")
        assert tag is not None and tag.digest == newer


def rewrite_export(path: Path, mutate: object) -> None:
    """Apply ``mutate`` to the record lines, then fix up the trailer so only it is wrong."""
    import hashlib

    lines = [json.loads(x) for x in path.read_text().splitlines()]
    body = lines[:-1]
    mutate(body)  # type: ignore[operator]
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in body)
    trailer = {
        "type": "end",
        "records": len(body) - 1,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    path.write_text(text + json.dumps(trailer) + "\n")


def _tamper_manifest(body: list[dict[str, object]]) -> None:
    for r in body:
        if r["type"] == "manifest":
            r["data"] = base64.b64encode(MANIFEST + b"\n").decode()


def _unknown_type(body: list[dict[str, object]]) -> None:
    body.append({"type": "verdict", "accepted": True})


def _bad_digest(body: list[dict[str, object]]) -> None:
    for r in body:
        if r["type"] == "tag":
            r["digest"] = "sha256:zzzz"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"not json at all\n"), id="garbage"),
        pytest.param(lambda p: p.write_bytes(b""), id="empty"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:-40]), id="truncated"),
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes().replace(b'"24.04"', b'"25.04"')),
            id="checksum",
        ),
        pytest.param(lambda p: rewrite_export(p, _tamper_manifest), id="manifest-hash"),
        pytest.param(lambda p: rewrite_export(p, _unknown_type), id="unknown-record"),
        pytest.param(lambda p: rewrite_export(p, _bad_digest), id="bad-digest"),
    ],
)
def test_malformed_import_is_refused_whole(tmp_path: Path, damage: object) -> None:
    export = tmp_path / "cache.jsonl"
    with Cache.open(tmp_path / "a") as a:
        fill(a)
        a.put_material("docker.io/library/debian", CONFIG_DIGEST, "cosign-sig", b"more")
        export_cache(a, export)
    damage(export)  # type: ignore[operator]
    with Cache.open(tmp_path / "b") as b:
        with pytest.raises(CacheError):
            import_cache(b, export)
        assert b.entries() == []
        assert b.get_config(CONFIG_DIGEST) is None
        assert b.get_manifest(MANIFEST_DIGEST) is None
        assert b.get_material("docker.io/library/debian", CONFIG_DIGEST, "cosign-sig") is None


def test_import_of_a_missing_file_is_a_cache_error(cache: Cache, tmp_path: Path) -> None:
    with pytest.raises(CacheError):
        import_cache(cache, tmp_path / "nope.jsonl")


# --- material only, never trust anchors; dates clamped (issue 11 item 3) --------------------


def _add_root(body: list[dict[str, object]]) -> None:
    root: dict[str, object] = {"type": "root", "name": "default",
                               "data": base64.b64encode(b"{}").decode()}
    body.insert(1, root)


def test_a_trusted_root_in_an_export_is_skipped_and_named_never_returned_or_stored(
        tmp_path: Path) -> None:
    export = tmp_path / "cache.jsonl"
    with Cache.open(tmp_path / "a") as a:
        fill(a)
        export_cache(a, export)
    rewrite_export(export, _add_root)
    with Cache.open(tmp_path / "b") as b:
        result = import_cache(b, export)
    assert result.skipped_roots == ("default",)
    assert result.material == 1
    assert not any(tmp_path.rglob("*.json"))  # nothing written besides the cache


def _material_at(digest: Digest, fetched_at: object) -> bytes:
    return json.dumps({"digest": str(digest), "sig_manifest": None, "blobs": {},
                       "fetched_at": fetched_at, "bundles": [], "bundle_errors": [],
                       "bundles_fetched": False}).encode()


@pytest.mark.parametrize("when", [4102444800.0, 1e300, "inf", "nan", 2**70])
def test_imported_material_is_never_dated_after_the_import(tmp_path: Path, when: object) -> None:
    import time

    from safedocker.errors import VerificationError
    from safedocker.verify.material import SignatureMaterial

    export = tmp_path / "cache.jsonl"
    with Cache.open(tmp_path / "a") as a:
        a.put_material(NAME, MANIFEST_DIGEST, "cosign-sig", _material_at(MANIFEST_DIGEST, when))
        export_cache(a, export)
    before = time.time()
    with Cache.open(tmp_path / "b") as b:
        import_cache(b, export)
        record = b.get_material(NAME, MANIFEST_DIGEST, "cosign-sig")
    after = time.time()
    assert record is not None and record.fetched_at <= after
    try:
        material = SignatureMaterial.from_bytes(record.data)
    except VerificationError:
        assert isinstance(when, str)  # "inf"/"nan" strings: unreadable, so never used
        return
    assert before <= material.fetched_at <= after


def test_material_dated_in_the_past_keeps_its_date_and_bytes(tmp_path: Path) -> None:
    export = tmp_path / "cache.jsonl"
    data = _material_at(MANIFEST_DIGEST, 1000.0)
    with Cache.open(tmp_path / "a") as a:
        a.put_material(NAME, MANIFEST_DIGEST, "cosign-sig", data)
        export_cache(a, export)
    with Cache.open(tmp_path / "b") as b:
        import_cache(b, export)
        record = b.get_material(NAME, MANIFEST_DIGEST, "cosign-sig")
    assert record is not None and record.data == data


def test_deeply_nested_json_in_an_export_is_refused_not_an_internal_error(
        tmp_path: Path) -> None:
    export = tmp_path / "cache.jsonl"
    header = json.dumps({"type": "header", "format": "safe-docker-cache-export", "version": 1})
    export.write_text(header + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    with Cache.open(tmp_path / "b") as b, pytest.raises(CacheError, match="nested too deeply"):
        import_cache(b, export)
