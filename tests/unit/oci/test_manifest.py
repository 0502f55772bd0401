"""Manifests and indexes as docker's Go reads them: what two readers could see differently
is refused (attack N3: ``manifests`` read by us, ``Manifests`` by docker)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from safedocker.errors import RegistryError
from safedocker.oci.manifest import parse_manifest
from safedocker.oci.media import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST
from safedocker.reference import Digest

GOOD = Digest.of(b"signed child")
EVIL = Digest.of(b"unsigned child")


def child(digest: Digest, **platform: str) -> dict[str, Any]:
    return {"mediaType": DOCKER_MANIFEST, "digest": str(digest), "size": 10,
            "platform": platform or {"architecture": "amd64", "os": "linux"}}


def index_bytes(body: str) -> bytes:
    return ('{"schemaVersion":2,"mediaType":"' + DOCKER_MANIFEST_LIST + '",' + body + "}").encode()


def test_an_index_whose_manifests_key_also_appears_in_another_case_is_refused() -> None:
    raw = index_bytes(f'"manifests":[{json.dumps(child(GOOD))}],'
                      f'"Manifests":[{json.dumps(child(EVIL))}]')
    with pytest.raises(RegistryError, match="malformed manifest") as info:
        parse_manifest(raw, DOCKER_MANIFEST_LIST)
    assert "same key to Go" in info.value.why


@pytest.mark.parametrize("spelling", ["Manifests", "MANIFESTS", "manifeſts"])
def test_a_known_member_spelled_otherwise_is_refused(spelling: str) -> None:
    raw = index_bytes(f'"manifests":[],"{spelling}":[{json.dumps(child(EVIL))}]'
                      if spelling != "Manifests" else
                      f'"{spelling}":[{json.dumps(child(EVIL))}]')
    with pytest.raises(RegistryError) as info:
        parse_manifest(raw, DOCKER_MANIFEST_LIST)
    assert spelling in info.value.why


@pytest.mark.parametrize("entry", [
    {"MediaType": DOCKER_MANIFEST, "mediaType": DOCKER_MANIFEST, "digest": str(GOOD),
     "size": 1},
    {"mediaType": DOCKER_MANIFEST, "Digest": str(EVIL), "digest": str(GOOD), "size": 1},
    {"mediaType": DOCKER_MANIFEST, "digest": str(GOOD), "size": 1,
     "platform": {"os": "linux", "architecture": "arm64", "Architecture": "amd64"}},
    {"mediaType": DOCKER_MANIFEST, "digest": str(GOOD), "size": 1,
     "Platform": {"os": "linux", "architecture": "amd64"}},
    {"mediaType": DOCKER_MANIFEST, "digest": str(GOOD), "size": 1,
     "platform": {"OS": "linux", "architecture": "amd64"}},
])
def test_descriptors_and_platforms_are_read_as_go_reads_them_or_refused(
        entry: dict[str, Any]) -> None:
    raw = index_bytes(f'"manifests":[{json.dumps(entry)}]')
    with pytest.raises(RegistryError):
        parse_manifest(raw, DOCKER_MANIFEST_LIST)


def test_a_plain_index_still_parses() -> None:
    raw = index_bytes(f'"manifests":[{json.dumps(child(GOOD))}],"annotations":{{"a":"b"}}')
    index = parse_manifest(raw, DOCKER_MANIFEST_LIST)
    assert [c.digest for c in index.children] == [GOOD]
