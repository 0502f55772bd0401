"""containers-policy.json import: podman's decisions, refusals that write nothing, and the
round trip through the export."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest

from safedocker.errors import ConfigError
from safedocker.policy.config import load_config
from safedocker.policy.containers import UnimportablePolicy, import_containers_policy
from safedocker.policy.export import containers_policy
from safedocker.policy.model import Action
from safedocker.reference import parse_reference
from safedocker.trust.keys import fingerprint_of
from tests.unit.policy.support import config_from, new_pem, paths_in
from tests.unit.policy.test_export import CP_POLICY

if TYPE_CHECKING:
    from pathlib import Path


def _podman_policy(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    pems = {name: new_pem() for name in ("one", "two")}
    (tmp_path / "two.pub").write_bytes(pems["two"])
    policy = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                "registry.example.com": [{"type": "insecureAcceptAnything"}],
                "registry.example.com/team": [
                    {"type": "sigstoreSigned",
                     "keyData": base64.b64encode(pems["one"]).decode(),
                     "signedIdentity": {"type": "matchRepository"}}],
                "registry.example.com/team/special": [{"type": "reject"}],
                "registry.example.com/team/app:stable": [
                    {"type": "sigstoreSigned", "keyData": base64.b64encode(pems["one"]).decode(),
                     "signedIdentity": {"type": "matchRepository"}},
                    {"type": "sigstoreSigned", "keyPath": str(tmp_path / "two.pub"),
                     "signedIdentity": {"type": "matchRepository"}}],
                "*.corp.example": [{"type": "insecureAcceptAnything"}],
                "docker.io/library/busybox": [{"type": "insecureAcceptAnything"}],
            },
            "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]},
        },
    }
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    return path, pems


@pytest.mark.parametrize(("image", "expected"), [
    # podman: exact image ref > repository > namespaces > host > *.domain > default
    ("registry.example.com/other/app:1", Action.ACCEPT),  # host
    ("registry.example.com/team/app:1", Action.VERIFY),  # namespace
    ("registry.example.com/team/app:stable", Action.VERIFY),  # exact reference
    ("registry.example.com/team/special:1", Action.REJECT),  # repository
    ("registry.example.com/teamx/app:1", Action.ACCEPT),  # host, not the namespace
    ("a.b.corp.example/x:1", Action.ACCEPT),  # *.domain
    ("corp.example/x:1", None),  # not a subdomain: default (reject)
    ("busybox", Action.ACCEPT),
    ("alpine", None),  # default
])
def test_import_gives_podmans_decisions(tmp_path: Path, image: str,
                                        expected: Action | None) -> None:
    path, pems = _podman_policy(tmp_path)
    where = paths_in(tmp_path)
    summary = import_containers_policy(where, path)
    assert "imported 6 rule(s)" in summary
    config = load_config(where)
    assert config.unmatched.value == "reject"
    decision = config.policy.decide(parse_reference(image))
    assert decision.action is expected
    if image.endswith(":stable"):
        [rule] = decision.rules
        assert rule.threshold == 2 and len(rule.keys) == 2
        assert {config.keys[k].fingerprint for k in rule.keys} == {
            fingerprint_of(pems["one"]), fingerprint_of(pems["two"])}


@pytest.mark.parametrize(("requirement", "why"), [
    ({"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}, "signedBy"),
    ({"type": "sigstoreSigned", "keyData": "AAAA",
      "signedIdentity": {"type": "remapIdentity", "prefix": "a", "signedPrefix": "b"}},
     "remapIdentity"),
    ({"type": "sigstoreSigned", "keyData": "!!"}, "base64"),
])
def test_import_refuses_what_it_cannot_represent_and_writes_nothing(
        tmp_path: Path, requirement: dict[str, Any], why: str) -> None:
    where = paths_in(tmp_path)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"default": [{"type": "reject"}], "transports": {"docker": {
        "ghcr.io/ok": [{"type": "insecureAcceptAnything"}],
        "ghcr.io/x": [requirement]}}}))
    with pytest.raises(UnimportablePolicy) as raised:
        import_containers_policy(where, path)
    assert why in raised.value.line()
    assert isinstance(raised.value, ConfigError)
    assert not where.user_config_file.exists()
    assert not where.user_keys_dir.exists() or not any(where.user_keys_dir.iterdir())


def test_import_refuses_requirements_on_other_transports(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"default": [{"type": "reject"}],
                                "transports": {"oci": {"": [{"type": "reject"}]}}}))
    with pytest.raises(UnimportablePolicy, match="other than docker"):
        import_containers_policy(paths_in(tmp_path), path)


def test_export_then_import_round_trips_containers_policy(tmp_path: Path) -> None:
    config, _ = config_from(tmp_path / "a", CP_POLICY)
    exported = tmp_path / "policy.json"
    exported.write_text(json.dumps(containers_policy(config)))
    where = paths_in(tmp_path / "b")
    import_containers_policy(where, exported)
    again = load_config(where)
    for image in ("127.0.0.1:5000/demo/x:1", "127.0.0.1:5000/pair:1", "127.0.0.1:5000/any:2",
                  "a.example.com/x:1", "busybox", "alpine", "127.0.0.1:5000/other:1"):
        ours, theirs = (c.policy.decide(parse_reference(image)) for c in (config, again))
        assert ours.action == theirs.action, image
        if ours.action is Action.VERIFY:
            mine, back = ours.rules[0], theirs.rules[0]
            assert back.threshold == mine.threshold
            assert back.reference == mine.reference
            assert {config.keys[k].fingerprint for k in mine.keys} == {
                again.keys[k].fingerprint for k in back.keys}
