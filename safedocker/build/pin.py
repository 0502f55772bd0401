"""Pinning what was verified, so that no local tag or moved tag can stand in for it.

Legacy builder (``rewrite``): the Dockerfile with exactly the image tokens replaced —
FROM's image, ``COPY --from=<image>`` (also inside ONBUILD) — by ``repo@sha256:…``; every
other byte unchanged. The rewritten file is scanned again and must name only the pins.
The legacy builder cannot run ``RUN --mount`` at all (it stops there), ignores
``# syntax``, and has no way to pin the COPY --from of a base image's own ONBUILD triggers.

BuildKit (``buildkit``): ``--build-context NAME=docker-image://repo@sha256:…`` for each
image, NAME being the reference as the Dockerfile writes it, normalized the way buildx and
the Dockerfile frontend both normalize it (``model.context_key``); FROM, COPY --from,
RUN --mount from= and ONBUILD triggers (a base image's too) all look their image up by that
name first. The ``# syntax`` frontend is pinned with ``--build-arg BUILDKIT_SYNTAX=…``,
which every BuildKit honours (named contexts reach the frontend image only from 0.12 on).
Named contexts need a Dockerfile frontend that knows them (1.4+; the built-in one of
Docker 23+ / BuildKit 0.10+); with an older one they would be ignored, so that is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from safedocker.build.argv import NamedContext, NamedKind
from safedocker.build.dockerfile import DockerfileScan, ImageUse, Use, scan
from safedocker.build.frontend import SYNTAX_ARG
from safedocker.build.model import Builder
from safedocker.errors import Refused, UsageError
from safedocker.reference import ImageRef, parse_reference

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_REWRITTEN = (Use.FROM, Use.COPY_FROM, Use.ONBUILD_COPY_FROM)


def _key(ref: ImageRef) -> ImageRef:
    """``alpine`` and ``alpine:latest`` are one image to pull."""
    return ref if ref.tag or ref.digest else ref.with_tag("latest")


def _target(ref: ImageRef) -> str:
    """What a pin hands the builder: ``repo@digest``, else the canonical ``repo:tag``."""
    return f"{ref.name}@{ref.digest}" if ref.digest else ref.tagged


def _pins(pins: Mapping[str, str]) -> dict[ImageRef, str]:
    """{image as written or normalized → repo@digest}, keyed by the normalized reference.

    A pin without a digest must be the canonical ``registry/repo:tag`` (an image the policy
    accepts without verification, as the gate names it): never a word a builder could
    read as a local image ID."""
    out: dict[ImageRef, str] = {}
    for original, pinned in pins.items():
        ref = _key(parse_reference(original))
        target = parse_reference(pinned)
        if target.digest is None and (target.tag is None or pinned != target.tagged):
            raise UsageError(f"the pin for {original} has no digest: {pinned}")
        text = _target(target)
        if out.get(ref, text) != text:
            raise UsageError(f"two different pins for {ref}")
        out[ref] = text
    return out


def _pin_for(use: ImageUse | NamedContext, ref: ImageRef, pins: dict[ImageRef, str]) -> str:
    pinned = pins.get(_key(ref))
    if pinned is None:
        where = use.where if isinstance(use, ImageUse) else f"--build-context {use.key}"
        raise Refused(f"{where}: no verified digest for {ref}",
                      hint="every image of the build must be verified before it starts")
    return pinned


# --------------------------------------------------------------------------- legacy


def rewrite(data: bytes, scanned: DockerfileScan, pins: Mapping[str, str]) -> bytes:
    """The Dockerfile with each FROM / COPY --from image token replaced by its pin."""
    if scanned.readings != 1:
        raise Refused("the Dockerfile's heredocs make its images depend on the builder "
                      "version, so it cannot be rewritten",
                      hint="build with BuildKit, which is pinned without a rewrite")
    table = _pins(pins)
    edits: dict[tuple[int, int], bytes] = {}
    for use in scanned.images:
        if use.use is Use.FRONTEND:
            continue  # the legacy builder ignores it; BuildKit pins it with a build arg
        if use.use not in _REWRITTEN:
            raise Refused(f"{use.where}: a RUN --mount image cannot be pinned by rewriting",
                          hint="build with buildx, which pins it with --build-context")
        if use.span is None:
            raise Refused(f"{use.where}: the image is split across a line continuation",
                          hint="write it on one line")
        pinned = _pin_for(use, use.ref, table)
        text = pinned if use.use is Use.FROM else f"--from={pinned}"
        replacement = text.encode()
        if edits.get(use.span, replacement) != replacement:
            raise Refused(f"{use.where}: one token names different images on different "
                          "platforms", hint="build one platform at a time")
        edits[use.span] = replacement
    out = bytearray(data)
    for (start, end), replacement in sorted(edits.items(), reverse=True):
        out[start:end] = replacement
    result = bytes(out)
    _check_rewrite(result, scanned, set(table.values()))
    return result


def _check_rewrite(result: bytes, scanned: DockerfileScan, pinned: set[str]) -> None:
    """Read the rewritten file as the builder will: only pinned images may remain."""
    inputs = scanned.inputs
    again = scan(result, builder=scanned.builder, build_args=dict(inputs.build_args),
                 platforms=inputs.platforms, target=inputs.target)
    for use in again.images:
        if use.use is Use.FRONTEND:
            continue
        # Without a digest, the canonical name exactly (no word a builder reads as an ID).
        if _target(use.ref) not in pinned or (use.ref.digest is None and use.text !=
                                                  _target(use.ref)):
            raise Refused(f"{use.where}: the rewritten Dockerfile still names an unpinned "
                          "image", hint="report this Dockerfile to safe-docker")
    if [s.name for s in again.stages] != [s.name for s in scanned.stages]:
        raise Refused("the rewritten Dockerfile has different stages",
                      hint="report this Dockerfile to safe-docker")


# --------------------------------------------------------------------------- BuildKit


@dataclass(frozen=True)
class BuildkitPins:
    contexts: tuple[tuple[str, str], ...]  # (NAME, docker-image://repo@sha256:…)
    build_args: tuple[tuple[str, str], ...]  # (BUILDKIT_SYNTAX, repo@sha256:… [args])


def images_to_verify(
    scanned: DockerfileScan, user: Sequence[NamedContext] = ()
) -> tuple[ImageRef, ...]:
    """Every image a BuildKit build would use: the Dockerfile's (an image a user context
    replaces counts as that context) and every ``docker-image://`` context given."""
    by_key = {c.key: c for c in user}
    refs: dict[ImageRef, None] = {}
    for use in scanned.images:
        named = by_key.get(use.context_key) if use.use is not Use.FRONTEND else None
        if named is None:
            refs.setdefault(use.ref, None)
    for named in user:
        if named.kind is NamedKind.IMAGE and named.image is not None:
            refs.setdefault(named.image, None)
    return tuple(refs)


def buildkit(
    scanned: DockerfileScan,
    pins: Mapping[str, str],
    *,
    user: Sequence[NamedContext] = (),
    builtin_named_contexts: bool,
) -> BuildkitPins:
    """The ``--build-context`` and ``--build-arg`` values that pin a BuildKit build.

    ``builtin_named_contexts``: the builder's own Dockerfile frontend honours named
    contexts (BuildKit 0.10+, Docker 23+). ``user`` are the ``--build-context`` the user
    gave; each docker-image one is pinned too, the others must be local directories.
    """
    if scanned.builder is not Builder.BUILDKIT:
        raise UsageError("named contexts pin BuildKit builds only")
    table = _pins(pins)
    frontend = scanned.frontend
    supported = builtin_named_contexts if frontend is None else frontend.named_contexts
    if not supported:
        raise Refused(
            "the Dockerfile frontend may ignore --build-context, so the images cannot be pinned",
            why="named contexts need Dockerfile frontend 1.4 or later" if frontend else
            "named contexts need BuildKit 0.10 (Docker 23) or later",
            hint="use '# syntax=docker/dockerfile:1' or a newer Docker",
        )
    by_key = {c.key: c for c in user}
    for named in user:
        if named.kind not in (NamedKind.IMAGE, NamedKind.LOCAL_DIR):
            raise Refused(f"--build-context {named.key}={named.value} cannot be verified",
                          hint="use a local directory or docker-image://")
    contexts: dict[str, str] = {}
    stage_names = scanned.stage_names
    for use in scanned.images:
        if use.use is Use.FRONTEND:
            continue
        key = use.context_key
        if key in by_key:
            continue  # the user's context decides; pinned below if it is an image
        if key in stage_names:
            raise Refused(
                f"{use.where}: a stage is also named {key!r}, and a --build-context of that "
                "name would replace the stage",
                hint="rename the stage, or write the image with a tag",
            )
        contexts[key] = f"docker-image://{_pin_for(use, use.ref, table)}"
    for named in user:
        if named.kind is NamedKind.IMAGE and named.image is not None:
            contexts[named.key] = f"docker-image://{_pin_for(named, named.image, table)}"
    build_args: tuple[tuple[str, str], ...] = ()
    if frontend is not None:
        pinned = table.get(_key(frontend.ref))
        if pinned is None:
            raise Refused(f"no verified digest for the Dockerfile frontend {frontend.ref}",
                          hint="every image of the build must be verified before it starts")
        _, _, rest = frontend.cmdline.partition(" ")
        build_args = ((SYNTAX_ARG, f"{pinned} {rest}" if rest else pinned),)
    return BuildkitPins(tuple(sorted(contexts.items())), build_args)
