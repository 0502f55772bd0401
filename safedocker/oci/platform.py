"""Platforms as docker and containerd read them: parsing, normalization, matching, and
choosing an index's child the way the daemon will.

The rules are containerd's ``platforms`` package (v1.0, which moby 25+ vendors) as moby's
``filterManifests`` applies them:

* Normalize: os lower-cased, an EMPTY os in an index entry is the *daemon's* os
  (``runtime.GOOS``); ``x86_64``/``x86-64`` → ``amd64`` (variant ``v1`` → none),
  ``aarch64`` → ``arm64`` (``8``/``v8``/``v8.0`` → none, ``9``/``v9.0`` → ``v9``),
  ``i386`` → ``386``, ``armhf`` → ``arm/v7``, ``armel`` → ``arm/v6``, ``arm`` with no
  variant or ``7`` → ``v7``, ``5``/``6``/``8`` → ``v5``/``v6``/``v8``.
* Matching is exact after normalization, over a preference vector: amd64/vN also runs
  lower levels and then 386; arm/vN runs down to v5; arm64/v8.x runs lower v8 minors,
  v9.x the v8.(x+5) line, then arm/v8 and below. An entry with ``os.features`` never
  matches a platform without them.
* Among the matches the daemon sorts by that preference with a *stable* sort, so the first
  entry of the best rank wins. Entries without a platform are tried last by moby 25+ and
  never by 20.10: safe-docker never chooses them.

Which child the daemon picks only decides *what safe-docker verifies*; what docker is
handed is the digest that was verified (the child's, unless the index itself carries an
accepted signature), so a different pick by another daemon version can never run an
unverified child.
"""

from __future__ import annotations

import platform as _platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safedocker.errors import RegistryError, UsageError
from safedocker.oci.media import MANIFEST_MEDIA_TYPES, malformed

if TYPE_CHECKING:
    from collections.abc import Callable

    from safedocker.oci.manifest import Descriptor, Manifest


class NoMatchingPlatform(RegistryError):
    """An image index has no manifest for the requested platform."""


# go/build's syslist (containerd's isKnownOS / isKnownArch).
_KNOWN_OS = frozenset({
    "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js",
    "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos",
})
_KNOWN_ARCH = frozenset({
    "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le",
    "loong64", "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc",
    "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm",
})
# containerd's specifierRe and osRe (an os may carry "(version+feature…)").
_SPECIFIER = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)
_OS_PART = re.compile(r"([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?",
                      re.ASCII)
# uname -m of a daemon host → (GOARCH-style arch, variant), for `docker info`'s Architecture.
_MACHINE = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""), "armv8l": ("arm", "v8"), "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"), "armv5tel": ("arm", "v5"), "armv5l": ("arm", "v5"),
    "i386": ("386", ""), "i486": ("386", ""), "i586": ("386", ""), "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
}
# arm64 variant → (majors, their highest minors): containerd's arm64variantToVersion.
_ARM64_VERSIONS = {
    **{f"v8.{m}": ((8,), (m,)) for m in range(10)},
    "v8": ((8,), (0,)),
    "v9": ((9, 8), (0, 5)),
    **{f"v9.{m}": ((9, 8), (m, min(m + 5, 9))) for m in range(8)},
}


def normalize_os(os_name: str, default_os: str = "linux") -> str:
    """containerd's normalizeOS: empty is the daemon's os, ``macos`` is ``darwin``."""
    if not os_name:
        return default_os
    os_name = os_name.lower()
    return "darwin" if os_name == "macos" else os_name


def normalize_arch(architecture: str, variant: str | None) -> tuple[str, str]:
    """containerd's normalizeArch (v1.0): the architecture and variant docker compares."""
    arch, var = architecture.lower(), (variant or "").lower()
    match arch:
        case "i386":
            return "386", ""
        case "x86_64" | "x86-64" | "amd64":
            return "amd64", "" if var == "v1" else var
        case "aarch64" | "arm64":
            if var in ("8", "v8", "v8.0"):
                var = ""
            elif var in ("9", "9.0", "v9.0"):
                var = "v9"
            return "arm64", var
        case "armhf":
            return "arm", "v7"
        case "armel":
            return "arm", "v6"
        case "arm":
            if var in ("", "7"):
                var = "v7"
            elif var in ("5", "6", "8"):
                var = "v" + var
            return "arm", var
    return arch, var


@dataclass(frozen=True)
class Platform:
    """An OCI platform: ``linux/amd64``, ``linux/arm64/v8``, ``linux/arm/v7``.

    Values are kept as written; :meth:`normalized` is what matching compares.
    """

    os: str
    architecture: str
    variant: str | None = None
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, default: Platform | Callable[[], Platform] | None = None
              ) -> Platform:
        """Parse like containerd's ``platforms.Parse`` (what the daemon does with docker's
        ``--platform``), normalized. A bare os takes ``default``'s architecture and a bare
        architecture its os: the *daemon's* (default: this host, for own commands)."""

        def fallback() -> Platform:
            if default is None:
                return host_platform()
            return default() if callable(default) else default

        def invalid(why: str) -> UsageError:
            return UsageError(f"invalid platform {text!r}", why=why,
                              hint="use os/arch[/variant], e.g. linux/arm64")

        if "*" in text:
            raise invalid("wildcards are not supported")
        parts = text.split("/")
        if len(parts) > 3:
            raise invalid("more than os/arch/variant")
        found = _OS_PART.fullmatch(parts[0])
        if found is None:
            raise invalid("the os part is not a name")
        if found.group(2) or found.group(3):
            raise invalid("os versions and features are not supported")
        if any(_SPECIFIER.fullmatch(part) is None for part in parts[1:]):
            raise invalid("each part is letters, digits, '_', '.' or '-'")
        if len(parts) == 1:
            word = normalize_os(parts[0])
            if word in _KNOWN_OS:
                base = fallback()
                return Platform(word, base.architecture, base.variant).normalized()
            arch, variant = normalize_arch(parts[0], "")
            if arch not in _KNOWN_ARCH:
                raise invalid("unknown operating system or architecture")
            return Platform(fallback().os, arch, variant).normalized()
        os_name = normalize_os(parts[0])
        variant_text = parts[2] if len(parts) == 3 else ""
        arch, variant = normalize_arch(parts[1], variant_text)
        return Platform(os_name, arch, variant or None)

    @classmethod
    def from_json(cls, obj: object, where: str) -> Platform:
        """An index entry's ``platform`` object (strings only; Go would refuse others)."""
        if not isinstance(obj, Mapping):
            raise malformed(where, "platform is not an object")
        os_name, arch, variant = obj.get("os"), obj.get("architecture"), obj.get("variant")
        if not isinstance(os_name, str) or not isinstance(arch, str):
            raise malformed(where, "platform lacks os or architecture")
        if variant is not None and not isinstance(variant, str):
            raise malformed(where, "platform variant is not a string")
        if obj.get("os.version") is not None and not isinstance(obj.get("os.version"), str):
            raise malformed(where, "platform os.version is not a string")
        features = obj.get("os.features") or []
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise malformed(where, "platform os.features is not a list of strings")
        return cls(os_name, arch, variant or None, tuple(features))

    def normalized(self, default_os: str = "linux") -> Platform:
        """containerd's Normalize; ``default_os`` stands for an empty os (the daemon's)."""
        arch, variant = normalize_arch(self.architecture, self.variant)
        return Platform(normalize_os(self.os, default_os), arch, variant or None,
                        tuple(sorted(set(self.os_features))))

    def matches(self, other: Platform, default_os: str = "linux") -> bool:
        """Whether an index entry for ``other`` is exactly this platform (containerd's
        matcher), after both are normalized."""
        mine, theirs = self.normalized(default_os), other.normalized(default_os)
        if (mine.os, mine.architecture, mine.variant) != (
                theirs.os, theirs.architecture, theirs.variant):
            return False
        return set(theirs.os_features) <= set(mine.os_features)

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


def compatible_platforms(wanted: Platform) -> list[Platform]:
    """What a daemon that wants ``wanted`` runs, most preferred first (containerd's
    platformVector over the normalized platform)."""
    p = wanted.normalized()
    vector = [p]
    variant = p.variant or ""
    if p.architecture == "amd64":
        level = _version(variant)
        vector += [Platform(p.os, "amd64", f"v{n}" if n > 1 else None, p.os_features)
                   for n in range(level - 1, 0, -1)] if level > 1 else []
        vector.append(Platform(p.os, "386", None, p.os_features))
    elif p.architecture == "arm":
        level = _version(variant)
        if level > 5:
            vector += [Platform(p.os, "arm", f"v{n}", p.os_features)
                       for n in range(level - 1, 4, -1)]
    elif p.architecture == "arm64":
        arm64 = variant or "v8"
        vector = []
        if arm64 in _ARM64_VERSIONS:
            majors, minors = _ARM64_VERSIONS[arm64]
            for major, top in zip(majors, minors, strict=True):
                for minor in range(top, -1, -1):
                    name = f"v{major}" if minor == 0 else f"v{major}.{minor}"
                    vector.append(Platform(p.os, "arm64", name, p.os_features))
        arm = "v8" if arm64.startswith(("v8", "v9")) else arm64
        vector += compatible_platforms(Platform(p.os, "arm", arm, p.os_features))
    return vector


def _version(variant: str) -> int:
    digits = variant[1:] if variant.startswith("v") else variant
    return int(digits) if digits.isdigit() else 0


def host_platform() -> Platform:
    """This machine's platform: only for own commands that have no daemon to ask (``verify``
    without docker); run/create/pull ask the daemon (:func:`daemon_platform`)."""
    return daemon_platform("linux", "", _platform.machine())


def daemon_platform(os_name: str, arch: str, machine: str = "") -> Platform:
    """The platform a daemon pulls for: its os and Go architecture (``docker version``'s
    Server Os/Arch), with the arm variant from its machine (``docker info``'s
    Architecture); without a Go architecture, the machine's. amd64 micro-architecture
    levels are not reported by the engine API: the baseline is assumed (every amd64 runs it)."""
    from_machine = _MACHINE.get(machine.lower(), (normalize_arch(machine, "")[0], ""))
    if not arch:
        arch, variant = from_machine
    else:
        variant = from_machine[1] if arch == from_machine[0] == "arm" else ""
        if arch == "arm" and machine.lower() in ("aarch64", "arm64", "armv8l"):
            variant = "v7"  # a 32-bit userland on a 64-bit ARM: containerd says v7
    if not os_name or not arch:
        raise NoMatchingPlatform("cannot tell the daemon's platform",
                                 why="docker reports no os or architecture",
                                 hint="choose one with --platform")
    return Platform(os_name, arch, variant or None).normalized()


class PlatformChoice:
    """The platform docker will ask an index for, worked out only when an index needs it:
    an explicit ``--platform`` (or ``DOCKER_DEFAULT_PLATFORM``, or compose's
    ``platform:``), else the daemon's own platform. ``daemon`` is asked at most once; None
    means this host (own commands with no daemon)."""

    def __init__(self, explicit: str | None = None,
                 daemon: Callable[[], Platform] | None = None) -> None:
        self.explicit = explicit or None
        self._daemon = daemon
        self._daemon_platform: Platform | None = None
        self._wanted: Platform | None = None

    def daemon(self) -> Platform:
        if self._daemon_platform is None:
            self._daemon_platform = (self._daemon or host_platform)()
        return self._daemon_platform

    @property
    def wanted(self) -> Platform:
        if self._wanted is None:
            self._wanted = (Platform.parse(self.explicit, self.daemon) if self.explicit
                            else self.daemon().normalized())
        return self._wanted

    @property
    def default_os(self) -> str:
        """What an empty os in an index entry means: the daemon's os."""
        return self.daemon().os if self._daemon is not None or not self.explicit \
            else self.wanted.os

    def __str__(self) -> str:
        return self.explicit or "the daemon's platform"


def matching_children(index: Manifest, choice: PlatformChoice) -> list[Descriptor]:
    """The index entries the daemon would consider for ``choice``, best first (stable)."""
    vector = compatible_platforms(choice.wanted)
    # Only an entry with an empty os needs the daemon's os (one more question to docker).
    empty_os = any(c.platform is not None and not c.platform.os for c in index.children)
    default_os = choice.default_os if empty_os else "linux"
    ranked: list[tuple[int, int, Descriptor]] = []
    for position, child in enumerate(index.children):
        if child.platform is None or child.media_type not in MANIFEST_MEDIA_TYPES:
            continue  # moby 20.10 never picks these, 25+ only last or skips them: never ours
        rank = next((r for r, p in enumerate(vector) if p.matches(child.platform, default_os)),
                    None)
        if rank is not None:
            ranked.append((rank, position, child))
    return [child for _, _, child in sorted(ranked, key=lambda item: item[:2])]


def select_platform(index: Manifest,
                    platform: PlatformChoice | Platform | str | None = None) -> Descriptor:
    """The child of ``index`` the daemon runs for ``platform`` (default: this host)."""
    if not index.is_index:
        raise UsageError(f"{index.digest} is not an image index")
    match platform:
        case PlatformChoice():
            choice = platform
        case Platform():
            choice = PlatformChoice(daemon=lambda: platform)
        case str() | None:
            choice = PlatformChoice(platform)
    found = matching_children(index, choice)
    if found:
        return found[0]
    available = sorted({str(c.platform) for c in index.children if c.platform is not None})
    raise NoMatchingPlatform(
        f"no matching manifest for {choice.wanted} in the manifest list entries",
        why=f"the image offers {', '.join(available) or 'no platforms'}",
        hint="choose one of these with --platform",
    )
