"""Platforms as docker and containerd read them: parsing, normalization, matching, and
choosing an index's child for a platform."""

from __future__ import annotations

import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safedocker.errors import RegistryError, UsageError
from safedocker.oci.media import malformed

if TYPE_CHECKING:
    from safedocker.oci.manifest import Descriptor, Manifest


class NoMatchingPlatform(RegistryError):
    """An image index has no manifest for the requested platform."""


_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i486": "386",
    "i586": "386",
    "i686": "386",
    "386": "386",
}
_MACHINE_TO_PLATFORM = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv8l": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


def _normalize_arch(architecture: str, variant: str | None) -> tuple[str, str | None]:
    """containerd's normalization: ``aarch64`` → ``arm64``, ``armhf`` → ``arm/v7`` …"""
    arch = architecture.lower()
    var = variant.lower() if variant else None
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    arch = _ARCH_ALIASES.get(arch, arch)
    if var and var[0].isdigit():
        var = "v" + var
    if arch == "arm64" and var in ("v8", "v8.0"):
        var = "v8"
    return arch, var


@dataclass(frozen=True)
class Platform:
    """An OCI platform: ``linux/amd64``, ``linux/arm64/v8``, ``linux/arm/v7``."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse like docker's ``--platform``: ``os[/arch[/variant]]`` or a bare ``arch``."""
        parts = [p.strip() for p in text.strip().split("/")]
        if not parts or any(not p for p in parts) or len(parts) > 3:
            raise UsageError(
                f"invalid platform {text!r}", hint="use os/arch[/variant], e.g. linux/arm64"
            )
        host = host_platform()
        if len(parts) == 1:
            word = parts[0].lower()
            if word in ("linux", "windows", "darwin", "freebsd"):
                return cls(word, host.architecture, host.variant)
            arch, variant = _normalize_arch(word, None)
            return cls("linux", arch, variant)
        arch, variant = _normalize_arch(parts[1], parts[2] if len(parts) == 3 else None)
        return cls(parts[0].lower(), arch, variant)

    @classmethod
    def from_json(cls, obj: object, where: str) -> Platform:
        if not isinstance(obj, Mapping):
            raise malformed(where, "platform is not an object")
        os_name, arch, variant = obj.get("os"), obj.get("architecture"), obj.get("variant")
        if not isinstance(os_name, str) or not isinstance(arch, str):
            raise malformed(where, "platform lacks os or architecture")
        if variant is not None and not isinstance(variant, str):
            raise malformed(where, "platform variant is not a string")
        return cls(os_name, arch, variant or None)

    def matches(self, other: Platform) -> bool:
        """Whether an index entry for ``other`` runs where ``self`` is wanted (exactly)."""
        if self.os.lower() != other.os.lower():
            return False
        mine = _normalize_arch(self.architecture, self.variant)
        theirs = _normalize_arch(other.architecture, other.variant)
        if mine[0] != theirs[0]:
            return False
        return _default_variant(*mine) == _default_variant(*theirs)

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


def _default_variant(arch: str, variant: str | None) -> str | None:
    if arch == "arm64":
        return variant or "v8"
    if arch == "arm":
        return variant or "v7"
    if arch == "amd64":
        return None if variant in (None, "v1") else variant
    return variant


def host_platform() -> Platform:
    """The platform docker would pull for on this host (images are linux images)."""
    machine = _platform.machine().lower()
    arch, variant = _MACHINE_TO_PLATFORM.get(machine, (_normalize_arch(machine, None)[0], None))
    return Platform("linux", arch, variant)


def _platform_preferences(wanted: Platform) -> list[Platform]:
    """The wanted platform, then what it can also run: arm/v7 runs v6 and v5 images."""
    arch, variant = _normalize_arch(wanted.architecture, wanted.variant)
    prefs = [wanted]
    if arch == "arm":
        order = ["v8", "v7", "v6", "v5"]
        current = _default_variant(arch, variant)
        if current in order:
            prefs += [Platform(wanted.os, "arm", v) for v in order[order.index(current) + 1 :]]
    return prefs


def select_platform(index: Manifest, platform: Platform | str | None = None) -> Descriptor:
    """The child of ``index`` for ``platform`` (default: this host), like docker picks it."""
    if not index.is_index:
        raise UsageError(f"{index.digest} is not an image index")
    wanted = (
        Platform.parse(platform) if isinstance(platform, str) else platform or host_platform()
    )
    for candidate in _platform_preferences(wanted):
        for child in index.children:
            if child.platform is not None and candidate.matches(child.platform):
                return child
    available = sorted({str(c.platform) for c in index.children if c.platform is not None})
    raise NoMatchingPlatform(
        f"no matching manifest for {wanted} in the manifest list entries",
        why=f"the image offers {', '.join(available) or 'no platforms'}",
        hint="choose one of these with --platform",
    )

