"""Platforms as containerd reads them, and the child of an index the daemon picks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from safedocker.errors import UsageError
from safedocker.oci.manifest import parse_manifest
from safedocker.oci.media import OCI_INDEX, OCI_MANIFEST
from safedocker.oci.platform import (
    NoMatchingPlatform,
    Platform,
    PlatformChoice,
    compatible_platforms,
    daemon_platform,
    host_platform,
    normalize_arch,
    select_platform,
)
from safedocker.reference import Digest

AMD64 = Platform("linux", "amd64")


def entry(text: str, *, name: str | None = None, media_type: str = OCI_MANIFEST,
          features: list[str] | None = None) -> dict[str, Any]:
    """An index entry for ``os/arch[/variant]`` whose digest is the hash of ``name``."""
    os_name, arch, *variant = text.split("/")
    plat: dict[str, Any] = {"os": os_name, "architecture": arch}
    if features:
        plat["os.features"] = features
    if variant:
        plat["variant"] = variant[0]
    return {"mediaType": media_type, "size": 10, "platform": plat,
            "digest": str(Digest.of((name or text).encode()))}


def index_of(*entries: str | dict[str, Any]) -> Any:
    manifests = [entry(e) if isinstance(e, str) else e for e in entries]
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    return parse_manifest(json.dumps(doc).encode(), OCI_INDEX)


def chosen(index: Any, wanted: Platform | str | PlatformChoice) -> Digest:
    return select_platform(index, wanted).digest


def digest_of(name: str) -> Digest:
    return Digest.of(name.encode())


@pytest.mark.parametrize(("arch", "variant", "normalized"), [
    ("x86_64", "", ("amd64", "")), ("x86-64", "", ("amd64", "")),
    ("amd64", "v1", ("amd64", "")), ("amd64", "v3", ("amd64", "v3")),
    ("AMD64", "", ("amd64", "")), ("i386", "", ("386", "")),
    ("aarch64", "", ("arm64", "")), ("arm64", "v8", ("arm64", "")),
    ("arm64", "8", ("arm64", "")), ("arm64", "v8.0", ("arm64", "")),
    ("arm64", "v8.2", ("arm64", "v8.2")), ("arm64", "9", ("arm64", "v9")),
    ("armhf", "", ("arm", "v7")), ("armel", "", ("arm", "v6")),
    ("arm", "", ("arm", "v7")), ("arm", "7", ("arm", "v7")), ("arm", "6", ("arm", "v6")),
    ("arm", "v5", ("arm", "v5")), ("riscv64", "", ("riscv64", "")),
])
def test_architectures_are_normalized_as_containerd_does(
        arch: str, variant: str, normalized: tuple[str, str]) -> None:
    assert normalize_arch(arch, variant) == normalized


@pytest.mark.parametrize(("wanted", "vector"), [
    ("linux/amd64", ["linux/amd64", "linux/386"]),
    ("linux/amd64/v3", ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"]),
    ("linux/arm/v7", ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
    ("linux/arm/v5", ["linux/arm/v5"]),
    ("linux/arm64", ["linux/arm64/v8", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6",
                     "linux/arm/v5"]),
    ("linux/arm64/v8.2", ["linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64/v8",
                          "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
    ("linux/s390x", ["linux/s390x"]),
])
def test_what_a_platform_also_runs_follows_containerds_vector(
        wanted: str, vector: list[str]) -> None:
    assert [str(p) for p in compatible_platforms(Platform.parse(wanted))] == vector


@pytest.mark.parametrize(("wanted", "picked"), [
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
    (AMD64, "linux/amd64"),
])
def test_the_child_is_the_daemons_pick(wanted: str | Platform, picked: str) -> None:
    index = index_of("unknown/unknown", "linux/amd64", "linux/arm64/v8", "linux/arm/v7",
                     "linux/arm/v6", "windows/amd64")
    assert chosen(index, wanted) == digest_of(picked)


def test_an_empty_os_in_an_entry_is_the_daemons_os_and_the_first_match_wins() -> None:
    """The issue's index: an unsigned {"os": "", amd64} child before the signed one."""
    index = index_of(entry("/amd64", name="B"), entry("linux/amd64", name="G"))
    assert chosen(index, AMD64) == digest_of("B")
    reordered = index_of(entry("linux/amd64", name="G"), entry("/amd64", name="B"))
    assert chosen(reordered, AMD64) == digest_of("G")


def test_an_empty_os_means_the_daemons_os_not_linux_by_default() -> None:
    index = index_of(entry("/amd64", name="B"), entry("windows/amd64", name="W"))
    windows_daemon = PlatformChoice(daemon=lambda: Platform("windows", "amd64"))
    assert chosen(index, windows_daemon) == digest_of("B")
    explicit_linux = PlatformChoice("linux/amd64", daemon=lambda: Platform("windows", "amd64"))
    with pytest.raises(NoMatchingPlatform):
        select_platform(index, explicit_linux)


def test_a_better_ranked_entry_wins_over_an_earlier_fallback() -> None:
    index = index_of("linux/386", "linux/arm/v6", "linux/amd64", "linux/arm/v7")
    assert chosen(index, "linux/amd64") == digest_of("linux/amd64")
    assert chosen(index, "linux/arm/v7") == digest_of("linux/arm/v7")
    assert chosen(index_of("linux/386"), "linux/amd64") == digest_of("linux/386")


def test_amd64_levels_prefer_the_highest_the_platform_runs() -> None:
    index = index_of("linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4")
    assert chosen(index, "linux/amd64/v3") == digest_of("linux/amd64/v3")
    assert chosen(index, "linux/amd64") == digest_of("linux/amd64")  # the baseline
    with pytest.raises(NoMatchingPlatform):
        select_platform(index_of("linux/amd64/v3"), "linux/amd64")


def test_entries_without_platform_features_or_manifest_type_are_never_picked() -> None:
    bare = {"mediaType": OCI_MANIFEST, "size": 1, "digest": str(digest_of("bare"))}
    featured = entry("linux/amd64", name="featured", features=["sse4"])
    attestation = entry("linux/amd64", name="att", media_type="application/x-unknown")
    with pytest.raises(NoMatchingPlatform):
        select_platform(index_of(bare, featured, attestation), AMD64)


def test_no_match_names_what_the_index_offers() -> None:
    with pytest.raises(NoMatchingPlatform, match="linux/s390x") as err:
        select_platform(index_of("linux/amd64"), "linux/s390x")
    assert "linux/amd64" in err.value.why


@pytest.mark.parametrize(("text", "parsed"), [
    ("linux/amd64", Platform("linux", "amd64")),
    ("linux/arm64/v8", Platform("linux", "arm64")),
    ("linux/arm/7", Platform("linux", "arm", "v7")),
    ("linux/armhf", Platform("linux", "arm", "v7")),
    ("amd64", Platform("linux", "amd64")),
    ("Linux/AMD64", Platform("linux", "amd64")),
    ("linux", Platform("linux", "s390x")),  # a bare os takes the daemon's architecture
    ("arm64", Platform("linux", "arm64")),
])
def test_platforms_parse_as_containerd_parses_them(text: str, parsed: Platform) -> None:
    assert Platform.parse(text, Platform("linux", "s390x")) == parsed


@pytest.mark.parametrize("text", ["linux/*", "linux/amd64/v1/x", "", "linux/", "nothing",
                                  "windows(10.0)/amd64", "linux/am d64"])
def test_platforms_docker_refuses_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        Platform.parse(text, AMD64)


@pytest.mark.parametrize(("os_name", "arch", "machine", "expected"), [
    ("linux", "amd64", "", "linux/amd64"),
    ("linux", "arm64", "", "linux/arm64"),
    ("linux", "arm", "armv6l", "linux/arm/v6"),
    ("linux", "arm", "armv7l", "linux/arm/v7"),
    ("linux", "arm", "aarch64", "linux/arm/v7"),  # 32-bit userland on a 64-bit ARM
    ("linux", "", "x86_64", "linux/amd64"),
])
def test_the_daemons_platform_comes_from_its_go_arch_and_machine(
        os_name: str, arch: str, machine: str, expected: str) -> None:
    assert str(daemon_platform(os_name, arch, machine)) == expected


def test_a_daemon_without_os_or_architecture_is_not_guessed() -> None:
    with pytest.raises(NoMatchingPlatform, match="daemon's platform"):
        daemon_platform("", "", "")


def test_the_daemon_is_asked_once_and_only_when_needed() -> None:
    asked: list[int] = []

    def daemon() -> Platform:
        asked.append(1)
        return AMD64

    choice = PlatformChoice("linux/arm64", daemon)
    assert select_platform(index_of("linux/amd64", "linux/arm64"), choice).digest == \
        digest_of("linux/arm64")
    assert asked == []  # explicit, and no entry with an empty os
    choice = PlatformChoice(None, daemon)
    assert choice.wanted == AMD64 and choice.wanted == AMD64 and asked == [1]


@pytest.mark.parametrize(("machine", "expected"),
                         [("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"),
                          ("armv7l", "linux/arm/v7")])
def test_own_commands_without_a_daemon_use_this_host(monkeypatch: pytest.MonkeyPatch,
                                                      machine: str, expected: str) -> None:
    monkeypatch.setattr("platform.machine", lambda: machine)
    assert str(host_platform()) == expected
    index = index_of("linux/amd64", "linux/arm64/v8", "linux/arm/v7")
    expected_entry = "linux/arm64/v8" if expected == "linux/arm64" else expected
    assert select_platform(index).digest == digest_of(expected_entry)
