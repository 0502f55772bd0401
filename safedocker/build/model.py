"""Values shared by the build grammar and the Dockerfile reader."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safedocker.errors import UsageError

if TYPE_CHECKING:
    from safedocker.reference import ImageRef


class Builder(enum.Enum):
    """Who reads the Dockerfile: their rules differ (stage names, ARGs, heredocs, mounts)."""

    LEGACY = "legacy"  # the daemon's classic builder (DOCKER_BUILDKIT=0, or no buildx)
    BUILDKIT = "buildkit"  # BuildKit through the buildx plugin


# containerd/platforms normalizeArch: spelling -> (arch, default variant)
_ARCH = {
    "i386": ("386", ""),
    "386": ("386", ""),
    "x86": ("386", ""),
    "i686": ("386", ""),
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "arm": ("arm", "v7"),
}
_OSES = frozenset({"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "illumos",
                   "solaris", "aix", "android", "ios", "plan9", "dragonfly", "js", "wasip1"})


@dataclass(frozen=True)
class Platform:
    """``os/arch[/variant]`` as containerd normalizes it (``linux/arm`` is ``linux/arm/v7``)."""

    os: str
    arch: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.arch}"
        return f"{text}/{self.variant}" if self.variant else text

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) == 1 and parts[0] in _ARCH:
            parts = ["linux", parts[0]]
        if not 2 <= len(parts) <= 3 or not all(parts) or parts[0] not in _OSES:
            raise UsageError(
                f"platform {text!r} is not os/arch[/variant]",
                hint="write the platform in full, such as linux/amd64 or linux/arm/v7",
            )
        os_, arch = parts[0], parts[1]
        variant = parts[2] if len(parts) == 3 else ""
        arch, default = _ARCH.get(arch, (arch, ""))
        if arch == "arm64" and variant in ("8", "v8"):
            variant = ""
        elif arch == "amd64" and variant == "v1":
            variant = ""
        elif arch == "arm":
            variant = {"": default, "5": "v5", "6": "v6", "7": "v7", "8": "v8"}.get(
                variant, variant
            )
        elif not variant:
            variant = default
        return cls(os_, arch, variant)


def context_key(ref: ImageRef) -> str:
    """The name BuildKit looks a named context up by for an image reference.

    dockerui ``Client.NamedContext`` (buildkit v0.32.2 frontend/dockerui/config.go) and
    buildx ``ParseContextNames`` (v0.36.1 util/buildflags/context.go) both take
    ``reference.FamiliarString(ParseNormalizedNamed(name))`` and trim a final ``:latest``:
    ``docker.io/library/alpine:3.19`` and ``alpine:3.19`` are both ``alpine:3.19``;
    ``alpine``, ``alpine:latest`` and ``index.docker.io/library/alpine`` are ``alpine``.
    """
    text = ref.familiar_name
    if ref.tag:
        text += f":{ref.tag}"
    if ref.digest:
        text += f"@{ref.digest}"
    return text.removesuffix(":latest")
