"""Platforms as docker reads them, and the child of an index chosen for one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from safedocker.oci.manifest import parse_manifest
from safedocker.oci.media import OCI_INDEX, OCI_MANIFEST
from safedocker.oci.platform import NoMatchingPlatform, Platform, host_platform, select_platform
from safedocker.reference import Digest


def index_of(*platforms: str) -> dict[str, Any]:
    manifests = []
    for text in platforms:
        os_name, arch, *variant = text.split("/")
        plat: dict[str, str] = {"os": os_name, "architecture": arch}
        if variant:
            plat["variant"] = variant[0]
        manifests.append({"mediaType": OCI_MANIFEST, "size": 10, "platform": plat,
                          "digest": str(Digest.of(text.encode()))})
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        ("linux/amd64", "linux/amd64"),
        ("amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/arm64/v8", "linux/arm64/v8"),
        ("linux/aarch64", "linux/arm64/v8"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/arm/v8", "linux/arm/v7"),  # falls back to the best older variant
        (Platform("linux", "amd64"), "linux/amd64"),
    ],
)
def test_select_platform(wanted: str | Platform, chosen: str) -> None:
    index = parse_manifest(json.dumps(
        index_of("unknown/unknown", "linux/amd64", "linux/arm64/v8", "linux/arm/v7",
               "linux/arm/v6", "windows/amd64")
    ).encode(), OCI_INDEX)
    child = select_platform(index, wanted)
    assert child.digest == Digest.of(chosen.encode())


def test_select_platform_without_a_match_names_what_exists() -> None:
    index = parse_manifest(json.dumps(index_of("linux/amd64")).encode(), OCI_INDEX)
    with pytest.raises(NoMatchingPlatform, match="linux/s390x") as err:
        select_platform(index, "linux/s390x")
    assert "linux/amd64" in err.value.why


@pytest.mark.parametrize(
    ("machine", "expected"),
    [("x86_64", "linux/amd64"), ("aarch64", "linux/arm64/v8"), ("armv7l", "linux/arm/v7")],
)
def test_host_platform(monkeypatch: pytest.MonkeyPatch, machine: str, expected: str) -> None:
    monkeypatch.setattr("platform.machine", lambda: machine)
    assert str(host_platform()) == expected
    index = parse_manifest(json.dumps(
        index_of("linux/amd64", "linux/arm64/v8", "linux/arm/v7")
    ).encode(), OCI_INDEX)
    assert select_platform(index).digest == Digest.of(expected.encode())


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        ("linux/arm/7", Platform("linux", "arm", "v7")),
        ("linux/armhf", Platform("linux", "arm", "v7")),
        ("amd64", Platform("linux", "amd64")),
        ("Linux/AMD64", Platform("linux", "amd64")),
    ],
)
def test_platform_parse(text: str, parsed: Platform) -> None:
    assert Platform.parse(text) == parsed
