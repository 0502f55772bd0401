"""The publisher catalogue: read strictly, turned into ordinary rules by ``policy catalog
add`` (keys pinned, nothing written on a refusal), and named by ``policy check``."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from typing import TYPE_CHECKING, Any

import pytest

from safedocker.errors import ConfigError, UsageError
from safedocker.ops import catalog as ops
from safedocker.policy import catalog
from safedocker.policy.catalog import Kind, load, parse
from safedocker.policy.config import load_config, set_rule
from safedocker.policy.model import Action, Tlog
from safedocker.reference import parse_reference
from safedocker.trust.keys import load_public_key
from tests.unit.policy.support import fresh_dirs

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from safedocker.policy.paths import Paths

SHIPPED = (resources.files("safedocker.policy") / "catalog.json").read_bytes()
# The DHI key's fingerprint as recorded when the keyring repository was read.
DHI_FINGERPRINT = "sha256:118ba556dd52f4aec67018efd316c285c783cd3e54cc0f4527605715c643887c"


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    return fresh_dirs(tmp_path, monkeypatch)


def _doc() -> dict[str, Any]:
    return dict(json.loads(SHIPPED))


def _with(change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = _doc()
    change(doc)
    return json.dumps(doc).encode()


def _publisher(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in doc["publishers"] if p["name"] == name)


# --- reading ---------------------------------------------------------------------------------


def test_the_shipped_catalogue_loads_with_every_kind_and_an_https_source() -> None:
    shipped = load()
    kinds = {e.kind for e in shipped.entries}
    assert kinds == {Kind.SIGNED, Kind.PENDING, Kind.UNSIGNED}
    assert {e.name for e in shipped.entries if e.kind is Kind.UNSIGNED} == {
        "docker-official-images", "pytorch"}
    for entry in shipped.entries:
        assert entry.source.startswith("https://") and entry.scopes, entry.name


def test_the_shipped_key_pems_load_and_match_their_pinned_fingerprints() -> None:
    keys = {k.name: k for e in load().entries for k in e.keys}
    assert set(keys) == {"dhi-2", "cert-manager-2021-09-20"}
    for key in keys.values():
        assert load_public_key(key.pem.encode(), key.name).fingerprint == key.fingerprint
    assert keys["dhi-2"].fingerprint == DHI_FINGERPRINT
    assert load_public_key(keys["cert-manager-2021-09-20"].pem.encode(), "cm").algorithm \
        == "rsa-4096"


def _swap_dhi_pem(doc: dict[str, Any]) -> None:
    cm = _publisher(doc, "cert-manager")["keys"]["cert-manager-2021-09-20"]["pem"]
    _publisher(doc, "docker-hardened-images")["keys"]["dhi-2"]["pem"] = cm


@pytest.mark.parametrize(("change", "why"), [
    (_swap_dhi_pem, "does not match its pinned fingerprint"),
    (lambda d: _publisher(d, "chainguard").update(tlog="sometimes"), "tlog must be"),
    (lambda d: _publisher(d, "chainguard").update(extra=1), "unknown member 'extra'"),
    (lambda d: _publisher(d, "flux")["identities"][0].update(subject_regexp="(?=x)"),
     "subject_regexp"),
    (lambda d: _publisher(d, "flux").update(source="http://fluxcd.io"), "https://"),
    (lambda d: _publisher(d, "flux").update(scopes=["fluxcd/flux"]), "normalized scopes"),
    (lambda d: d["pending"][0].pop("why"), "says why"),
    (lambda d: d["publishers"].append(_publisher(d, "flux")), "appears twice"),
    (lambda d: _publisher(d, "kyverno").update(signature_repository="signatures"),
     "fully qualified"),
    (lambda d: _publisher(d, "chainguard").update(identities=[]), "identities only"),
])
def test_a_catalogue_that_deviates_is_invalid_and_says_where(
        change: Callable[[dict[str, Any]], None], why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(_with(change))
    assert why in caught.value.why


def test_a_duplicate_member_is_refused_by_the_strict_reader() -> None:
    text = SHIPPED.decode().replace('"version": "2026.12.1",',
                                    '"version": "2026.12.1", "version": "9",', 1)
    with pytest.raises(ConfigError, match="catalogue is invalid"):
        parse(text.encode())


# --- add ---------------------------------------------------------------------------------------


def test_add_writes_rules_that_read_back_as_the_entry_says(where: Paths) -> None:
    lines = ops.add(where, "kubernetes")
    assert lines[0].startswith("policy for registry.k8s.io/*: verify with krel-trust@")
    [rule] = load_config(where).policy.rules
    entry = load().get("kubernetes")
    assert (rule.scope, rule.action, rule.tlog) == ("registry.k8s.io/*", Action.VERIFY,
                                                    Tlog.REQUIRED)
    assert rule.identities == entry.identities and rule.signed_identity.remaps == entry.remaps
    text = where.user_config_file.read_text()  # ordinary TOML a user reads and edits
    assert 'subject = "krel-trust@k8s-releng-prod.iam.gserviceaccount.com"' in text


@pytest.mark.parametrize("name", [e.name for e in load().entries if e.kind is Kind.SIGNED])
def test_every_signing_entry_can_be_added_and_covers_its_scopes(where: Paths, name: str) -> None:
    ops.add(where, name)
    config = load_config(where)
    entry = load().get(name)
    assert {r.scope for r in config.policy.rules} == set(entry.scopes)
    for rule in config.policy.rules:
        assert rule.keys == tuple(k.name for k in entry.keys)
        assert rule.signatures_repository == entry.signatures_repository
    for key in entry.keys:
        assert config.keys[key.name].fingerprint == key.fingerprint


def test_add_trusts_the_key_with_its_pin_and_a_source(where: Paths) -> None:
    ops.add(where, "docker-hardened-images")
    config = load_config(where)
    assert config.keys["dhi-2"].fingerprint == DHI_FINGERPRINT
    assert "docker-hardened-images" in config.keys["dhi-2"].source
    assert (where.user_keys_dir / "dhi-2.pub").read_bytes().startswith(b"-----BEGIN PUBLIC")


@pytest.mark.parametrize(("name", "what"), [
    ("pytorch", "publishes its images unsigned"),
    ("docker-official-images", "publishes its images unsigned"),
    ("istio", "not confirmed"),
    ("tekton", "not confirmed"),
    ("nosuch", "no publisher 'nosuch'"),
])
def test_add_refuses_unsigned_pending_and_unknown_and_writes_nothing(
        where: Paths, name: str, what: str) -> None:
    with pytest.raises(UsageError, match=what):
        ops.add(where, name)
    assert not where.user_config_file.exists()


def test_an_entry_needing_a_feature_this_version_lacks_is_refused_by_add(
        where: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    future = parse(_with(lambda d: _publisher(d, "chainguard").update(
        requires=["attestation-policy-v9"])))
    monkeypatch.setattr(ops, "load", lambda: future)
    assert future.get("chainguard").missing_features == ("attestation-policy-v9",)
    with pytest.raises(UsageError, match="needs attestation-policy-v9") as caught:
        ops.add(where, "chainguard")
    assert "would refuse every image" in caught.value.why
    assert not where.user_config_file.exists()
    assert "needs a newer safe-docker" in "\n".join(ops.list_lines(future))


def test_add_twice_changes_nothing(where: Paths) -> None:
    ops.add(where, "cilium")
    before = where.user_config_file.read_text()
    assert ops.add(where, "cilium")[-1] == "cilium: your policy already has these rules"
    assert where.user_config_file.read_text() == before


def test_add_makes_an_accept_rule_stricter_but_never_replaces_a_verify_or_deny(
        where: Paths) -> None:
    set_rule(where, "cgr.dev/chainguard/*", {"action": "accept"})
    assert "(was: accept without signatures)" in ops.add(where, "chainguard")[0]
    set_rule(where, "gcr.io/distroless/*", {"action": "reject"})
    before = where.user_config_file.read_text()
    with pytest.raises(UsageError, match="already have a rule for gcr.io/distroless"):
        ops.add(where, "distroless")
    assert where.user_config_file.read_text() == before


def test_add_never_trusts_a_key_under_a_name_holding_another_key(where: Paths,
                                                                tmp_path: Path) -> None:
    from safedocker.trust.keystore import add_key
    from tests.unit.policy.support import new_pem

    mine = tmp_path / "mine.pub"
    mine.write_bytes(new_pem())
    add_key(where, "dhi-2", str(mine))
    before = where.user_config_file.read_text()
    with pytest.raises(UsageError, match="cannot trust docker-hardened-images's key"):
        ops.add(where, "docker-hardened-images")
    assert where.user_config_file.read_text() == before


def test_add_under_a_locked_system_policy_adds_a_requirement(where: Paths) -> None:
    (where.system_config_dir / "config.toml").write_text(
        'locked = true\n[[policy]]\nscope = "registry.k8s.io"\naction = "accept"\n')
    ops.add(where, "kubernetes")
    decision = load_config(where).policy.decide(parse_reference("registry.k8s.io/pause:3.10"))
    assert [r.action for r in decision.rules] == [Action.ACCEPT, Action.VERIFY]
    assert decision.action is Action.VERIFY


# --- policy check ------------------------------------------------------------------------------


def _cli(where: Paths, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"SAFE_DOCKER_CONFIG_DIR": str(where.config_dir),
           "SAFE_DOCKER_SYSTEM_CONFIG_DIR": str(where.system_config_dir),
           "SAFE_DOCKER_CACHE_DIR": str(where.cache_dir),
           "SAFE_DOCKER_STATE_DIR": str(where.state_dir), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "safedocker", *args], env=env,
                          capture_output=True, text=True)


def test_policy_check_says_official_images_and_pytorch_are_published_unsigned(
        where: Paths) -> None:
    official = _cli(where, "policy", "check", "ubuntu:24.04")
    assert official.returncode == 0
    assert ("because: docker.io/library/ubuntu is published unsigned (Docker Official Images "
            "are not signed today; see https://www.docker.com/blog/retiring-docker-content-"
            "trust/)") in official.stdout
    assert "no scope covers" not in official.stdout
    torch = _cli(where, "policy", "check", "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
                 "--json")
    assert "docker.io/pytorch/pytorch is published unsigned" in json.loads(
        torch.stdout)["explanation"]


def test_policy_check_names_the_catalogue_entry_for_an_uncovered_signed_image(
        where: Paths) -> None:
    ref = parse_reference("cgr.dev/chainguard/python:latest")
    decision = load_config(where).policy.decide(ref)
    assert "`safe-docker policy catalog add chainguard`" in ops.check_explanation(ref, decision)


def test_policy_check_keeps_the_rules_explanation_where_a_rule_covers(where: Paths) -> None:
    set_rule(where, "docker.io/library", {"action": "accept"})
    ref = parse_reference("ubuntu")
    decision = load_config(where).policy.decide(ref)
    assert ops.check_explanation(ref, decision) == decision.explain()


def test_catalog_commands_list_show_and_add_through_the_cli(where: Paths) -> None:
    listed = _cli(where, "policy", "catalog", "list")
    assert listed.returncode == 0 and "pytorch\tunsigned\t" in listed.stdout
    shown = json.loads(_cli(where, "policy", "catalog", "show", "argo-cd", "--json").stdout)
    assert shown["identities"][0]["github_workflow_repository"] == "argoproj/argo-cd"
    refused = _cli(where, "policy", "catalog", "add", "pytorch")
    assert refused.returncode == 2
    assert refused.stderr.startswith("safe-docker: pytorch publishes its images unsigned — ")
    assert len(refused.stderr.splitlines()) == 1
    added = _cli(where, "policy", "catalog", "add", "flux")
    assert added.returncode == 0, added.stderr
    assert "policy for ghcr.io/fluxcd/*" in added.stdout


def test_the_catalogue_is_read_once_per_process() -> None:
    assert catalog.load() is catalog.load()


def test_show_names_every_requirement_of_a_signer_including_workflow_claims() -> None:
    lines = "\n".join(ops.show_lines(load().get("argo-cd")))
    assert "image-reuse" in lines and "workflow_repository argoproj/argo-cd" in lines
    assert "issuer https://token.actions.githubusercontent.com" in lines
    key_lines = "\n".join(ops.show_lines(load().get("cert-manager")))
    assert "key cert-manager-2021-09-20 (sha256:20a9d852" in key_lines
