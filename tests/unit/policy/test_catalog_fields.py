"""The publisher catalogue's signature places and signed names fit the rule schema.

safedocker/policy/catalog.json records, per publisher, where signatures are kept
(``signature_repository``, Kyverno's) and which names they sign
(``signed_identity.remaps``: plain prefixes, and the regexp registry.k8s.io's regional
backends need). Each must read as a rule's ``signatures_repository`` and
``signed_identity.remap``, and every regexp in it must be one Go's RE2 runs the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import tomli_w

from safedocker._internal.goregexp import compile_go
from safedocker.policy.config import load_config
from safedocker.policy.paths import Paths

if TYPE_CHECKING:
    from safedocker.policy.model import Rule

CATALOG = json.loads((Path(__file__).parents[3] / "safedocker" / "policy" / "catalog.json")
                     .read_text())
PUBLISHERS = {p["name"]: p for p in CATALOG["publishers"]}


def _rule_for(tmp_path: Path, publisher: dict[str, Any]) -> Rule:
    rule: dict[str, Any] = {
        "scope": publisher["scopes"][0],
        "identities": [{"issuer": "https://issuer.example", "subject": "placeholder"}],
    }
    if "signature_repository" in publisher:
        rule["signatures_repository"] = publisher["signature_repository"]
    remaps = publisher.get("signed_identity", {}).get("remaps")
    if remaps:
        rule["signed_identity"] = {"remap": remaps}
    where = Paths(config_dir=tmp_path / "c", cache_dir=tmp_path / "k", state_dir=tmp_path / "s",
                  system_config_dir=tmp_path / "sys")
    where.config_dir.mkdir(parents=True)
    where.user_config_file.write_text(tomli_w.dumps({"policy": [rule]}))
    [loaded] = load_config(where).policy.rules
    return loaded


@pytest.mark.parametrize("name", [n for n, p in PUBLISHERS.items()
                                  if "signed_identity" in p or "signature_repository" in p])
def test_catalogue_signature_places_and_remaps_read_as_rule_fields(tmp_path: Path,
                                                                   name: str) -> None:
    publisher = PUBLISHERS[name]
    rule = _rule_for(tmp_path, publisher)
    assert rule.signatures_repository == publisher.get("signature_repository")
    assert len(rule.signed_identity.remaps) == len(
        publisher.get("signed_identity", {}).get("remaps", []))


def test_kubernetes_regional_backend_names_are_accepted_and_others_are_not(
        tmp_path: Path) -> None:
    [remap] = _rule_for(tmp_path, PUBLISHERS["kubernetes"]).signed_identity.remaps
    pulled = "registry.k8s.io/kube-apiserver"
    for region in ("us-west2", "europe-west1", "us-central1"):
        assert remap.allows(pulled, f"{region}-docker.pkg.dev/k8s-artifacts-prod/images/"
                                    "kube-apiserver")
    assert not remap.allows(pulled, "evil.example/k8s-artifacts-prod/images/kube-apiserver")
    assert not remap.allows(pulled, "us-docker.pkg.dev/k8s-artifacts-prod/images/etcd")


def test_every_catalogue_regexp_is_valid_re2() -> None:
    found = []
    for publisher in CATALOG["publishers"]:
        for identity in publisher.get("identities", []):
            found += [identity[k] for k in ("subject_regexp", "issuer_regexp") if k in identity]
        for remap in publisher.get("signed_identity", {}).get("remaps", []):
            if "signed_prefix_regexp" in remap:
                found.append(remap["signed_prefix_regexp"])
    assert found
    for pattern in found:
        compile_go(pattern)  # raises where Go's RE2 would refuse or read it otherwise
