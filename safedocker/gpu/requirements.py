"""The image's GPU needs: its config's ``NVIDIA_*`` variables and the ``NVIDIA_REQUIRE_*``
language, checked against this host as the NVIDIA runtime hook would.

Requirement grammar (libnvidia-container ``src/cli/dsl.c``): one variable's value is a
list of terms separated by single spaces, ORed; a term is a list of factors separated by
commas, ANDed; a factor is ``KEY OP VALUE`` with KEY one of ``cuda``, ``driver``,
``arch``, ``brand`` (case-insensitive) and OP one of ``= != < <= > >=``. Versions compare
numerically component by component, missing components counting as zero
(``12.4 == 12.4.0``); brands compare case-insensitively and only with ``=``/``!=``.
Every ``NVIDIA_REQUIRE_*`` variable except ``NVIDIA_REQUIRE_JETPACK`` must hold (AND),
for every visible GPU. ``cuda`` is the driver's CUDA version (``12.4``), ``driver`` the
kernel driver version (``535.104.05``), ``arch`` the compute capability (``8.0``),
``brand`` libnvidia-container's brand name (Tesla, Quadro, NVS, GRID, GeForce, TITAN,
else Unknown: an H100 is ``brand=unknown`` there, which is why CUDA images list it).

Deliberate difference: libnvidia-container evaluates lazily and reports a malformed factor
only when evaluation reaches it; here a malformed requirement is refused as a whole,
whatever the host, so the verdict never depends on which term happened to match first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from safedocker.errors import GpuRequirementUnmet

if TYPE_CHECKING:
    from safedocker.gpu.detect import GpuDevice, HostGpu

VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
REQUIRE_PREFIX = "NVIDIA_REQUIRE_"
REQUIRE_CUDA = "NVIDIA_REQUIRE_CUDA"
REQUIRE_JETPACK = "NVIDIA_REQUIRE_JETPACK"
DISABLE_REQUIRE = "NVIDIA_DISABLE_REQUIRE"
CUDA_VERSION = "CUDA_VERSION"
LEGACY_VOLUMES_LABEL = "com.nvidia.volumes.needed"

# Go's strconv.ParseBool true values: how the toolkit reads NVIDIA_DISABLE_REQUIRE.
_TRUE_WORDS = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_UINTMAX = 2**64 - 1


def image_env(image_config: Mapping[str, Any] | None) -> dict[str, str]:
    """``config.Env`` as a dict (last one wins, like the toolkit's env map).

    Accepts an OCI image config (``{"config": {...}}``), docker inspect's ``{"Config": …}``
    or the inner config object itself."""
    env: dict[str, str] = {}
    items = _config_section(image_config).get("Env")
    # A list of strings, as docker reads it; anything else sets nothing (never a crash).
    for item in items if isinstance(items, list) else ():
        if isinstance(item, str) and "=" in item:
            key, _, value = item.partition("=")
            env[key] = value
    return env


def image_labels(image_config: Mapping[str, Any] | None) -> dict[str, str]:
    labels = _config_section(image_config).get("Labels")
    if not isinstance(labels, Mapping):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def _config_section(image_config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not image_config:
        return {}
    for key in ("config", "Config"):
        inner = image_config.get(key)
        if isinstance(inner, Mapping):
            return inner
    return image_config


def is_cuda_image(image_config: Mapping[str, Any] | None) -> bool:
    """An image made for NVIDIA GPUs: its env sets NVIDIA_VISIBLE_DEVICES (not void),
    NVIDIA_REQUIRE_CUDA or CUDA_VERSION, or it has the nvidia-docker v1 volumes label."""
    env = image_env(image_config)
    visible = env.get(VISIBLE_DEVICES)
    if visible is not None and visible.strip() not in ("", "void"):
        return True
    if env.get(REQUIRE_CUDA) or env.get(CUDA_VERSION):
        return True
    return LEGACY_VOLUMES_LABEL in image_labels(image_config)



class MalformedRequirement(GpuRequirementUnmet):
    """An ``NVIDIA_REQUIRE_*`` value that is not valid requirement syntax (fail closed)."""


_OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
_VERSION_KEYS = ("cuda", "driver", "arch")
_KEYS = (*_VERSION_KEYS, "brand")
_OP_CHARS = "<>=!"


@dataclass(frozen=True)
class Condition:
    """One factor: ``cuda>=12.4``; ``key`` is lower-cased."""

    key: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"

    def describe(self) -> str:
        subject = {
            "cuda": "CUDA",
            "driver": "driver",
            "arch": "compute capability",
            "brand": "GPU brand",
        }[self.key]
        return f"{subject} {self.op} {self.value}"

    def holds(self, host: HostGpu, device: GpuDevice | None) -> bool:
        """As libnvidia-container's rule functions: an unknown host value is satisfied."""
        if self.key == "brand":
            if device is None:
                return True
            equal = device.brand.lower() == self.value.lower()
            return equal if self.op == "=" else not equal
        if self.key == "cuda":
            have = host.cuda
        elif self.key == "driver":
            have = host.driver_version
        else:
            if device is None:
                return True
            have = device.arch
        if have is None:
            return True
        mine = _version(have)
        if mine is None:
            raise GpuRequirementUnmet(
                f"cannot evaluate {self}",
                why=f"this host's {self.key} version {have!r} is not numeric",
                hint="report this host's nvidia-smi output",
            )
        theirs = _version(self.value)
        if theirs is None:  # a Condition built by hand, not by parse_requirement
            raise MalformedRequirement(f"not a version: {self.value!r}", why=str(self))
        return _compare(mine, self.op, theirs)


@dataclass(frozen=True)
class Requirement:
    """One ``NVIDIA_REQUIRE_*`` value: OR of terms, each an AND of conditions.

    No terms (an empty value) is always satisfied."""

    text: str
    terms: tuple[tuple[Condition, ...], ...]
    source: str = ""  # the variable it came from

    def satisfied(self, host: HostGpu, device: GpuDevice | None = None) -> bool:
        if not self.terms:
            return True
        return any(all(c.holds(host, device) for c in term) for term in self.terms)


def parse_requirement(text: str, *, source: str = "") -> Requirement:
    """Parse a requirement string; ``MalformedRequirement`` for anything libnvidia-container
    would call an invalid expression (unknown key, operator or value)."""
    terms: list[tuple[Condition, ...]] = []
    for term_text in text.split(" "):
        factors = tuple(_parse_factor(f, text, source) for f in term_text.split(",") if f)
        if factors:
            terms.append(factors)
    return Requirement(text, tuple(terms), source)


def _parse_factor(factor: str, text: str, source: str) -> Condition:
    def bad(why: str) -> MalformedRequirement:
        where = f"{source}={text}" if source else text
        if len(where) > 160:
            where = where[:157] + "…"
        return MalformedRequirement(
            f"the image has a malformed GPU requirement: {factor!r}",
            why=f"{why}, in {where}",
            hint="ask the image's publisher to fix it, or run with "
            "-e NVIDIA_DISABLE_REQUIRE=1 to skip the requirement check",
        )

    key_end = len(factor)
    for i, ch in enumerate(factor):
        if ch in _OP_CHARS:
            key_end = i
            break
    if key_end == 0:
        raise bad("no key before the operator")
    if key_end == len(factor):
        raise bad("no operator (= != < <= > >=)")
    op_end = key_end
    while op_end < len(factor) and factor[op_end] in _OP_CHARS:
        op_end += 1
    key, op, value = factor[:key_end].lower(), factor[key_end:op_end], factor[op_end:]
    if op == "!":
        op = "!="  # dsl.c matches an operator on the run's length: a lone '!' is '!='
    if op not in _OPERATORS:
        raise bad(f"unknown operator {op!r}")
    if not value:
        raise bad("no value after the operator")
    if key not in _KEYS:
        raise bad(f"unknown key {factor[:key_end]!r} (cuda, driver, arch, brand)")
    if key == "brand":
        if op not in ("=", "!="):
            raise bad("a brand compares only with = or !=")
    elif _version(value) is None:
        raise bad(f"{value!r} is not a version (digits and dots)")
    return Condition(key, op, value)


def _version(text: str) -> tuple[int, ...] | None:
    """dsl.c's version syntax: digits and dots, starting with a digit; dots may repeat."""
    if not re.fullmatch(r"[0-9][0-9.]*", text):
        return None
    # Leading zeros dropped first: strtoul reads them, and int() refuses over 4300 digits.
    digits = [p.lstrip("0") or "0" for p in text.split(".") if p]
    if any(len(p) > len(str(_UINTMAX)) for p in digits):
        return None
    parts = tuple(int(p) for p in digits)
    if any(p >= _UINTMAX for p in parts):
        return None
    return parts


def _compare(a: tuple[int, ...], op: str, b: tuple[int, ...]) -> bool:
    width = max(len(a), len(b))
    left, right = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def requirements_disabled(env: Mapping[str, str]) -> bool:
    """NVIDIA_DISABLE_REQUIRE as the toolkit reads it (Go's strconv.ParseBool)."""
    return env.get(DISABLE_REQUIRE, "") in _TRUE_WORDS


_LEGACY_CUDA = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$",
    re.ASCII,  # \d as Go's regexp reads it: 0-9 only
)


def image_requirements(
    image_config: Mapping[str, Any] | None, run_env: Mapping[str, str] | None = None
) -> tuple[Requirement, ...]:
    """Every requirement the NVIDIA hook would check, parsed.

    ``run_env`` (the ``-e``/``--env-file`` values of the run) overrides the image's env, as
    it does in the container's spec. Empty when NVIDIA_DISABLE_REQUIRE is true. A legacy
    image (CUDA_VERSION set, NVIDIA_REQUIRE_CUDA empty or unset) gets ``cuda>=MAJOR.MINOR``.
    """
    env = image_env(image_config)
    env.update(run_env or {})
    if requirements_disabled(env):
        return ()
    reqs = [
        parse_requirement(value, source=name)
        for name, value in sorted(env.items())
        if name.startswith(REQUIRE_PREFIX) and not name.startswith(REQUIRE_JETPACK)
    ]
    legacy = env.get(CUDA_VERSION, "")
    if legacy and not env.get(REQUIRE_CUDA):
        m = _LEGACY_CUDA.match(legacy)
        if m is None:
            raise MalformedRequirement(
                f"the image has an invalid CUDA_VERSION {legacy!r}",
                why="the NVIDIA runtime hook derives cuda>=MAJOR.MINOR from it and would fail",
                hint="ask the image's publisher to fix it, or run with -e NVIDIA_DISABLE_REQUIRE=1",
            )
        # As numbers, without int(): it refuses strings of over 4300 digits.
        major, minor = (g.lstrip("0") or "0" for g in (m.group(1), m.group(2) or "0"))
        synthesized = f"cuda>={major}.{minor}"
        reqs.append(parse_requirement(synthesized, source=CUDA_VERSION))
    return tuple(reqs)


def select_devices(host: HostGpu, selection: Sequence[str] | None) -> tuple[GpuDevice, ...]:
    """The host GPUs a selection makes visible; unknown tokens (MIG UUIDs) keep them all."""
    if selection is None:
        return host.devices
    chosen: dict[int, GpuDevice] = {}
    for token in selection:
        parent = token.split(":", 1)[0]
        match = [
            d
            for d in host.devices
            if (parent.isdigit() and d.index == int(parent)) or d.uuid.lower() == token.lower()
        ]
        if not match:
            return host.devices
        for d in match:
            chosen[d.index] = d
    return tuple(chosen[i] for i in sorted(chosen))


def check_requirements(
    image_config: Mapping[str, Any] | None,
    host: HostGpu,
    *,
    run_env: Mapping[str, str] | None = None,
    devices: Sequence[str] | None = None,
) -> None:
    """Raise ``GpuRequirementUnmet`` (exit 125) when the image's requirements do not hold.

    Call it when the container will get GPUs (``GpuFlags.gives_gpus``). It is a no-op on a
    host without a usable GPU: then no GPU flags are added (``always`` already refused), so
    the hook never runs and the image may well run on the CPU. As libnvidia-container does,
    every requirement is checked against every visible GPU (``devices``: a selection such
    as ``GpuFlags.devices``; None: all).
    """
    if not host.present:
        return
    reqs = image_requirements(image_config, run_env)
    if not reqs:
        return
    visible: Sequence[GpuDevice | None] = select_devices(host, devices) or (None,)
    for device in visible:
        for req in reqs:
            if not req.satisfied(host, device):
                raise _unmet(req, host, device)


def _unmet(req: Requirement, host: HostGpu, device: GpuDevice | None) -> GpuRequirementUnmet:
    first = req.terms[0]
    alternatives = len(req.terms) - 1
    gpu = ""
    if device is not None:
        gpu = f"GPU {device.index} ({device.name}) is brand {device.brand}"
        if device.arch is not None:
            gpu += f", compute capability {device.arch}"
    host_cuda = host.cuda or "unknown"
    driver = host.driver_version or "unknown"
    if len(first) == 1 and first[0].key == "cuda" and first[0].op in (">=", ">"):
        why = f"this host's driver {driver} supports CUDA {host_cuda}"
        if alternatives:
            why += f", and none of the image's {alternatives} driver/brand alternatives match"
            if gpu:
                why += f" ({gpu})"
        hint = f"update the NVIDIA driver to one that supports CUDA {first[0].value}"
        if host.cuda:
            hint += (
                f", or pick an image built for CUDA {host_cuda} or older (a -cuda{host_cuda} tag)"
            )
        return GpuRequirementUnmet(
            f"image needs CUDA {first[0].op} {first[0].value}", why=why, hint=hint
        )
    needs = " and ".join(c.describe() for c in first)
    facts = [f"driver {driver}", f"CUDA {host_cuda}"]
    if gpu:
        facts.append(gpu)
    why = "this host has " + "; ".join(facts)
    if alternatives:
        why += f" (and none of {alternatives} alternatives match)"
    return GpuRequirementUnmet(
        f"image needs {needs} ({req.source or 'requirement'})",
        why=why,
        hint="pick an image built for this host's GPU and driver, or run with "
        "-e NVIDIA_DISABLE_REQUIRE=1 to skip the check",
    )

