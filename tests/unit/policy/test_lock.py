"""The lock (issue 12, attack N8): with ``locked = true`` in the system file, no variable and
no user file makes a decision weaker, system rules see system trust anchors only, and one
line says the lock won each time it overrides something.

Real TOML files, real keys and, for keyless, signatures from the independent SigstoreWorld.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from safedocker._internal import environment
from safedocker.errors import ConfigError
from safedocker.policy.config import load_config
from safedocker.policy.model import Action, Mode, Unmatched
from safedocker.policy.paths import Paths, paths
from safedocker.reference import parse_reference
from safedocker.signatures.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from safedocker.signatures.simplesigning import make_payload
from safedocker.trust.keys import fingerprint_of
from safedocker.trust.roots import EMBEDDED_SOURCE
from safedocker.verify.rules import evaluate_rule
from tests.sigstore_world import BUNDLE_ANNOTATION, SigstoreWorld, public_pem
from tests.unit.verify.test_rules_keyless import DEV, descriptor, keyless_layer, material

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from safedocker.policy.config import Config
    from safedocker.policy.model import Rule
    from safedocker.reference import Digest
    from safedocker.trust.roots import TrustRoot
    from safedocker.verify.material import SignatureMaterial

SCOPE = "127.0.0.1:5000/team/*"
IMAGE = parse_reference("127.0.0.1:5000/team/app:v1")
LOCK_WON = "ignored \u2014 the system policy is locked"


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.delenv("SAFE_DOCKER_MODE", raising=False)
    result = Paths(config_dir=tmp_path / "user", cache_dir=tmp_path / "cache",
                   state_dir=tmp_path / "state", system_config_dir=tmp_path / "system")
    for directory in (result.config_dir, result.system_config_dir):
        (directory / "keys").mkdir(parents=True)
    return result


def trust_key(directory: Path, name: str, key: ec.EllipticCurvePrivateKey) -> str:
    """Write NAME.pub into DIRECTORY/keys and return its [keys.NAME] table."""
    pem = public_pem(key)
    (directory / "keys" / f"{name}.pub").write_bytes(pem)
    return f'[keys.{name}]\nfingerprint = "{fingerprint_of(pem)}"\n'


def locked(where: Paths, body: str) -> None:
    where.system_config_file.write_text("locked = true\n" + body)


def lines_saying_the_lock_won(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if LOCK_WON in line]


def system_rule(config: Config) -> Rule:
    (rule,) = config.policy.system_rules
    return rule


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("wanted", ["off", "warn"])
def test_env_mode_cannot_weaken_a_locked_mode_and_a_line_says_so(
        where: Paths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        wanted: str) -> None:
    locked(where, 'mode = "enforce"\n')
    monkeypatch.setenv("SAFE_DOCKER_MODE", wanted)
    assert load_config(where).mode is Mode.ENFORCE
    (line,) = lines_saying_the_lock_won(capsys)
    assert line.startswith(f"safe-docker: SAFE_DOCKER_MODE={wanted} ignored")
    assert str(where.system_config_file) in line and "(hint: " in line


def test_a_stricter_env_mode_is_honoured_under_a_lock_without_a_line(
        where: Paths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    locked(where, 'mode = "warn"\n')
    monkeypatch.setenv("SAFE_DOCKER_MODE", "enforce")
    assert load_config(where).mode is Mode.ENFORCE
    assert lines_saying_the_lock_won(capsys) == []


def test_user_settings_cannot_weaken_a_lock_and_each_override_is_said(
        where: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    locked(where, 'offline_max_age = "1d"\n')
    where.user_config_file.write_text(
        'mode = "off"\nunmatched = "accept"\noffline_max_age = "30d"\n'
        'insecure_registries = ["evil.example:5000"]\n')
    config = load_config(where)
    assert (config.mode, config.unmatched) == (Mode.ENFORCE, Unmatched.REJECT)
    assert config.offline_max_age == 86400
    assert config.insecure_registries == ()
    said = "\n".join(lines_saying_the_lock_won(capsys))
    for what in ('mode = "off"', 'unmatched = "accept"', "offline_max_age",
                 "insecure_registries"):
        assert f"safe-docker: {what} in {where.user_config_file} ignored" in said, what


def test_a_user_offline_age_cannot_exceed_the_locked_default_either(
        where: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    locked(where, "")  # no offline_max_age: the default (30 days) is the system's
    where.user_config_file.write_text('offline_max_age = "400d"\n')
    assert load_config(where).offline_max_age == 30 * 86400
    assert len(lines_saying_the_lock_won(capsys)) == 1
    where.user_config_file.write_text('offline_max_age = "1h"\n')  # stricter: honoured
    assert load_config(where).offline_max_age == 3600
    assert lines_saying_the_lock_won(capsys) == []
    locked(where, 'offline_max_age = "0s"\n')  # never offline: zero is a setting too
    assert load_config(where).offline_max_age == 0


def test_a_user_policy_allow_does_not_admit_what_the_locked_policy_rejects(where: Paths) -> None:
    locked(where, "")
    where.user_config_file.write_text(f'[[policy]]\nscope = "{SCOPE}"\naction = "accept"\n')
    decision = load_config(where).policy.decide(IMAGE)
    assert decision.action is Action.REJECT
    assert "locked system policy" in decision.explain()


# --- SAFE_DOCKER_SYSTEM_CONFIG_DIR --------------------------------------------------------------


@pytest.fixture
def default_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default system location, moved into the test's directory."""
    directory = tmp_path / "etc-safe-docker"
    directory.mkdir()
    monkeypatch.setattr(environment, "DEFAULT_SYSTEM_CONFIG_DIR", str(directory))
    return directory


def env_pointing_at(tmp_path: Path, system_dir: Path) -> dict[str, str]:
    return {"SAFE_DOCKER_SYSTEM_CONFIG_DIR": str(system_dir),
            "SAFE_DOCKER_CONFIG_DIR": str(tmp_path / "user")}


def test_the_system_dir_variable_is_ignored_under_a_lock_at_the_default_location(
        tmp_path: Path, default_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SAFE_DOCKER_MODE", raising=False)
    (default_dir / "config.toml").write_text('locked = true\nmode = "enforce"\n')
    empty = tmp_path / "empty"
    empty.mkdir()
    where = paths(env_pointing_at(tmp_path, empty))
    assert where.system_config_dir == default_dir
    assert where.ignored_system_config_dir == empty
    config = load_config(where)
    assert config.policy.locked and config.unmatched is Unmatched.REJECT
    (line,) = lines_saying_the_lock_won(capsys)
    assert line.startswith(f"safe-docker: SAFE_DOCKER_SYSTEM_CONFIG_DIR={empty} ignored")


@pytest.mark.parametrize(("text", "honoured"), [
    (None, True),  # no file at the default location
    ('mode = "enforce"\n', True),  # a file without a lock
    ("locked = false\n", True),
    ("locked = true\n", False),
    ('locked = "yes"\n', False),  # invalid: fail closed, the default is read (and is 78)
    ("locked = [[[[", False),  # not TOML: same
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", False),  # nested too deeply: same
])
def test_the_system_dir_variable_is_honoured_only_without_a_locked_default(
        tmp_path: Path, default_dir: Path, text: str | None, honoured: bool) -> None:
    if text is not None:
        (default_dir / "config.toml").write_text(text)
    elsewhere = tmp_path / "elsewhere"
    where = paths(env_pointing_at(tmp_path, elsewhere))
    assert where.system_config_dir == (elsewhere if honoured else default_dir)


def test_the_shim_passes_mode_off_straight_to_docker_only_without_a_system_file(
        tmp_path: Path, default_dir: Path) -> None:
    assert not environment.system_policy_present({})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.toml").write_text("")
    assert environment.system_policy_present(
        {"SAFE_DOCKER_SYSTEM_CONFIG_DIR": str(tmp_path / "other")})
    (default_dir / "config.toml").write_text("locked = true\n")
    assert environment.system_policy_present({})


# --- keys (attack N8) ---------------------------------------------------------------------------


def test_a_locked_system_rule_naming_a_key_the_system_lacks_is_78_even_with_a_user_key(
        where: Paths) -> None:
    locked(where, f'[[policy]]\nscope = "{SCOPE}"\nkeys = ["corp"]\n')
    where.user_config_file.write_text(
        trust_key(where.config_dir, "corp", ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(ConfigError) as caught:
        load_config(where)
    line = caught.value.line()
    assert caught.value.exit_code == 78
    assert str(where.system_config_file) in line
    assert "names key 'corp', which the system file does not define" in line


def test_a_user_key_named_like_a_system_key_never_signs_for_the_system_rule(
        where: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    system_key = ec.generate_private_key(ec.SECP256R1())
    user_key = ec.generate_private_key(ec.SECP256R1())
    locked(where, trust_key(where.system_config_dir, "corp", system_key)
           + f'[[policy]]\nscope = "{SCOPE}"\nkeys = ["corp"]\n')
    where.user_config_file.write_text(trust_key(where.config_dir, "corp", user_key))
    config = load_config(where)
    (line,) = lines_saying_the_lock_won(capsys)
    assert line.startswith("safe-docker: user key 'corp' ignored")
    by_user = material_signed_by(user_key)
    assert not evaluate_rule(system_rule(config), IMAGE, [by_user], config).satisfied
    by_system = material_signed_by(system_key)
    assert evaluate_rule(system_rule(config), IMAGE, [by_system], config).satisfied


def test_a_locked_system_rekor_key_list_must_name_system_keys(where: Paths) -> None:
    locked(where, 'rekor_keys = ["rekor"]\n')
    where.user_config_file.write_text(
        trust_key(where.config_dir, "rekor", ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(ConfigError, match="rekor_keys: names key 'rekor'"):
        load_config(where)


def material_signed_by(key: ec.EllipticCurvePrivateKey, set_by: SigstoreWorld | None = None
                       ) -> tuple[Digest, SignatureMaterial]:
    """A `.sig` layer for IMAGE signed by ``key``; with ``set_by``, plus that log's SET."""
    from tests.unit.verify.test_rules_keyless import DIGEST

    payload = make_payload(IMAGE.name, DIGEST)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    annotations = {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()}
    if set_by is not None:
        entry = set_by.log(set_by.hashedrekord_body(signature, public_pem(key), payload))
        annotations[BUNDLE_ANNOTATION] = entry.cosign_bundle_annotation()
    return DIGEST, material(DIGEST, descriptor(annotations, SIMPLE_SIGNING_MEDIA_TYPE, payload))


# --- Rekor keys ---------------------------------------------------------------------------------


def test_a_user_rekor_key_never_satisfies_a_locked_required_tlog(
        where: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12.4: a SET signed by a user-trusted "Rekor" key met the system's tlog."""
    rekor = SigstoreWorld()  # the user's own log, whose key the user trusts as Rekor
    corp = ec.generate_private_key(ec.SECP256R1())
    system = (trust_key(where.system_config_dir, "corp", corp)
              + trust_key(where.system_config_dir, "sysrekor",
                          ec.generate_private_key(ec.SECP256R1()))
              + f'[[policy]]\nscope = "{SCOPE}"\nkeys = ["corp"]\ntlog = "required"\n')
    where.system_config_file.write_text('rekor_keys = ["sysrekor"]\n' + system)
    where.user_config_file.write_text(
        'rekor_keys = ["rekor"]\n' + trust_key(where.config_dir, "rekor", rekor.rekor_key))
    signed = material_signed_by(corp, set_by=rekor)
    unlocked = load_config(where)
    assert evaluate_rule(system_rule(unlocked), IMAGE, [signed], unlocked).satisfied

    where.system_config_file.write_text('locked = true\nrekor_keys = ["sysrekor"]\n' + system)
    config = load_config(where)
    outcome = evaluate_rule(system_rule(config), IMAGE, [signed], config)
    assert not outcome.satisfied
    assert any("transparency-log entry does not verify" in r for r in outcome.reasons)
    (line,) = lines_saying_the_lock_won(capsys)
    assert line.startswith(f"safe-docker: rekor_keys in {where.user_config_file} for system "
                           "rules ignored")
    assert config.anchors(system_rule(config)).rekor_keys == ("sysrekor",)


# --- trusted roots ------------------------------------------------------------------------------


def keyless_rule_text(trust_root: str | None = None) -> str:
    text = (f'[[policy]]\nscope = "{SCOPE}"\nidentities = [{{ issuer = "{DEV.issuer}", '
            f'subject = "{DEV.subject}" }}]\ntlog = "required"\n')
    return text + (f'trust_root = "{trust_root}"\n' if trust_root else "")


def test_a_user_default_root_never_serves_a_locked_system_rule(
        where: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12.3: a user `trust-root import` (user default.json) beat the built-in root."""
    world = SigstoreWorld()  # the attacker's own Sigstore, claiming the trusted identity
    (where.config_dir / "trust-roots").mkdir()
    (where.config_dir / "trust-roots" / "default.json").write_bytes(world.trusted_root_json())
    forged = [material_of(world)]
    where.system_config_file.write_text(keyless_rule_text())
    unlocked = load_config(where)
    assert evaluate_rule(system_rule(unlocked), IMAGE, forged, unlocked,
                         user_roots(where)).satisfied  # no lock: the user's root is theirs

    locked(where, keyless_rule_text())
    config = load_config(where)
    outcome = evaluate_rule(system_rule(config), IMAGE, forged, config, user_roots(where))
    assert not outcome.satisfied
    assert any(f"trusted root 'default' ({EMBEDDED_SOURCE})" in r and "--trust-root NAME" in r
               for r in outcome.reasons), outcome.reasons
    (line,) = lines_saying_the_lock_won(capsys)
    assert line.startswith("safe-docker: user trusted root 'default' for the rule for")


def test_a_locked_system_rule_naming_a_root_the_system_lacks_is_78(where: Paths) -> None:
    locked(where, keyless_rule_text("corp"))
    (where.config_dir / "trust-roots").mkdir()
    (where.config_dir / "trust-roots" / "corp.json").write_bytes(
        SigstoreWorld().trusted_root_json())
    with pytest.raises(ConfigError, match="names trusted root 'corp', which the system does "
                                          "not have") as caught:
        load_config(where)
    assert str(where.system_config_file) in caught.value.line()


def test_a_locked_system_rule_verifies_with_the_system_root_of_its_name(where: Paths) -> None:
    world = SigstoreWorld()
    (where.system_config_dir / "trust-roots").mkdir()
    (where.system_config_dir / "trust-roots" / "corp.json").write_bytes(
        world.trusted_root_json())
    locked(where, keyless_rule_text("corp"))
    config = load_config(where)
    assert evaluate_rule(system_rule(config), IMAGE, [material_of(world)], config).satisfied


def material_of(world: SigstoreWorld) -> tuple[Digest, SignatureMaterial]:
    from tests.unit.verify.test_rules_keyless import DIGEST

    return DIGEST, material(DIGEST, keyless_layer(world))


def user_roots(where: Paths) -> Callable[[str], TrustRoot]:
    """How a verifier reads roots for user rules (system, then user, then built-in)."""
    from safedocker.trust.roots import trust_root

    return lambda name: trust_root(where, name)


def test_user_rules_under_a_lock_still_use_the_users_anchors(where: Paths) -> None:
    user_key = ec.generate_private_key(ec.SECP256R1())
    locked(where, "")
    where.user_config_file.write_text(trust_key(where.config_dir, "mine", user_key)
                                      + f'[[policy]]\nscope = "{SCOPE}"\nkeys = ["mine"]\n')
    config = load_config(where)
    (rule,) = config.policy.user_rules
    assert config.anchors(rule).system_roots_dir is None
    assert evaluate_rule(rule, IMAGE, [material_signed_by(user_key)], config).satisfied
    assert config.notes == ()
