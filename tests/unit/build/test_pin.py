"""Pinning what was verified: the legacy rewrite and BuildKit's named contexts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from safedocker.build.argv import NamedContext, NamedKind
from safedocker.build.dockerfile import DockerfileScan, Platforms, scan
from safedocker.build.model import Builder, context_key
from safedocker.build.pin import buildkit, images_to_verify, rewrite
from safedocker.errors import Refused, UsageError
from safedocker.reference import parse_reference

if TYPE_CHECKING:
    from collections.abc import Mapping

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
AMD64 = Platforms(build="linux/amd64")


def legacy(data: bytes, *, build_args: Mapping[str, str | None] | None = None) -> DockerfileScan:
    return scan(data, builder=Builder.LEGACY, build_args=build_args)


def bk(data: bytes, *, platforms: Platforms = AMD64) -> DockerfileScan:
    return scan(data, builder=Builder.BUILDKIT, platforms=platforms)


# ------------------------------------------------------------------ legacy rewrite


def test_rewrite_replaces_exactly_the_image_tokens_and_nothing_else() -> None:
    data = (b"# escape=\\\n"
            b"ARG BASE=alpine:3.19\r\n"
            b"FROM --platform=linux/amd64   ${BASE}   AS build \n"
            b"RUN echo FROM alpine:3.19 \\\n"
            b"    && true\n"
            b"FROM busybox\n"
            b"COPY --chown=1 --from=golang:1.22 /go /go\n"
            b"COPY --from=build /x /y\n")
    pins = {"alpine:3.19": f"docker.io/library/alpine@{D1}",
            "busybox": f"busybox@{D2}",
            "docker.io/library/golang:1.22": f"golang:1.22@{D3}"}
    out = rewrite(data, legacy(data), pins)
    assert out == (b"# escape=\\\n"
                   b"ARG BASE=alpine:3.19\r\n"
                   b"FROM --platform=linux/amd64   docker.io/library/alpine@" + D1.encode()
                   + b"   AS build \n"
                   b"RUN echo FROM alpine:3.19 \\\n"
                   b"    && true\n"
                   b"FROM docker.io/library/busybox@" + D2.encode() + b"\n"
                   b"COPY --chown=1 --from=docker.io/library/golang@" + D3.encode()
                   + b" /go /go\n"
                   b"COPY --from=build /x /y\n")


def test_rewrite_follows_the_build_arg_that_chose_the_base() -> None:
    data = b"ARG BASE=evil/unsigned\nFROM $BASE\n"
    scanned = legacy(data, build_args={"BASE": "good/signed:1"})
    out = rewrite(data, scanned, {"good/signed:1": f"good/signed@{D1}"})
    assert out == b"ARG BASE=evil/unsigned\nFROM docker.io/good/signed@" + D1.encode() + b"\n"


def test_rewrite_pins_a_token_on_a_continuation_line() -> None:
    data = b"FROM \\\n  alpine \\\n  AS b\n"
    out = rewrite(data, legacy(data), {"alpine": f"alpine@{D1}"})
    assert out == b"FROM \\\n  docker.io/library/alpine@" + D1.encode() + b" \\\n  AS b\n"


def test_rewrite_pins_onbuild_copy_from() -> None:
    data = b"FROM alpine AS base\nONBUILD COPY --from=evil /x /y\nFROM base\n"
    out = rewrite(data, legacy(data), {"alpine": f"alpine@{D1}", "evil": f"evil@{D2}"})
    assert b"ONBUILD COPY --from=docker.io/library/evil@" + D2.encode() + b" /x /y" in out


def test_rewrite_keeps_a_shadowing_stage_a_stage() -> None:
    data = b"FROM evil AS alpine\nFROM alpine\n"
    out = rewrite(data, legacy(data), {"evil": f"evil@{D1}"})
    assert out == b"FROM docker.io/library/evil@" + D1.encode() + b" AS alpine\nFROM alpine\n"


@pytest.mark.parametrize(
    ("data", "pins", "fragment"),
    [
        (b"FROM alpine\n", {}, "no verified digest"),
        (b"FROM alp\\\nine\n", {"alpine": f"alpine@{D1}"}, "split across"),
        (b"FROM alpine\n", {"alpine": "alpine:3.19"}, "no digest"),
    ],
    ids=["missing pin", "token split by a continuation", "pin without digest"],
)
def test_rewrite_refuses_what_it_cannot_pin(
    data: bytes, pins: dict[str, str], fragment: str
) -> None:
    with pytest.raises((Refused, UsageError), match=fragment):
        rewrite(data, legacy(data), pins)


def test_rewrite_refuses_heredoc_readings_that_disagree() -> None:
    data = b"FROM alpine\nRUN <<EOF\nx\nEOF\n"
    with pytest.raises(Refused, match="heredocs"):
        rewrite(data, bk(data), {"alpine": f"alpine@{D1}"})


def test_rewrite_refuses_run_mount_images() -> None:
    data = b"FROM alpine\nRUN --mount=from=busybox true\n"
    with pytest.raises(Refused, match="RUN --mount"):
        rewrite(data, bk(data), {"alpine": f"alpine@{D1}", "busybox": f"busybox@{D2}"})


def test_legacy_scan_notes_that_run_mount_needs_buildkit() -> None:
    data = b"FROM alpine\nRUN --mount=from=busybox true\n"
    scanned = legacy(data)
    assert any("needs BuildKit" in n for n in scanned.notes)
    assert rewrite(data, scanned, {"alpine": f"alpine@{D1}"}).endswith(
        b"RUN --mount=from=busybox true\n")


# ------------------------------------------------------------------ BuildKit named contexts


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("alpine", "alpine"),
        ("alpine:latest", "alpine"),
        ("docker.io/library/alpine:3.19", "alpine:3.19"),
        ("index.docker.io/library/alpine", "alpine"),
        ("library/alpine:3.19", "alpine:3.19"),
        ("bitnami/nginx:1", "bitnami/nginx:1"),
        ("ghcr.io/o/app:latest", "ghcr.io/o/app"),
        ("localhost:5000/app", "localhost:5000/app"),
        (f"alpine@{D1}", f"alpine@{D1}"),
        (f"alpine:latest@{D1}", f"alpine:latest@{D1}"),
    ],
)
def test_named_context_key_is_the_familiar_name_without_latest(written: str, key: str) -> None:
    assert context_key(parse_reference(written)) == key


def test_buildkit_pins_every_image_by_its_context_name() -> None:
    data = (b"FROM docker.io/library/alpine:3.19 AS b\n"
            b"COPY --from=golang /go /go\n"
            b"RUN --mount=from=ghcr.io/o/tools:latest,target=/t true\n")
    pins = {"alpine:3.19": f"alpine@{D1}", "golang": f"golang@{D2}",
            "ghcr.io/o/tools": f"ghcr.io/o/tools@{D3}"}
    got = buildkit(bk(data), pins, builtin_named_contexts=True)
    assert got.contexts == (
        ("alpine:3.19", f"docker-image://docker.io/library/alpine@{D1}"),
        ("ghcr.io/o/tools", f"docker-image://ghcr.io/o/tools@{D3}"),
        ("golang", f"docker-image://docker.io/library/golang@{D2}"),
    )
    assert got.build_args == ()


def test_buildkit_pins_the_frontend_with_buildkit_syntax_keeping_its_arguments() -> None:
    data = b"# syntax=docker/dockerfile:1.7 --opt=x\nFROM alpine\n"
    pins = {"docker/dockerfile:1.7": f"docker/dockerfile@{D1}", "alpine": f"alpine@{D2}"}
    got = buildkit(bk(data), pins, builtin_named_contexts=False)
    assert got.build_args == (("BUILDKIT_SYNTAX",
                               f"docker.io/docker/dockerfile@{D1} --opt=x"),)


@pytest.mark.parametrize(
    ("data", "builtin", "fragment"),
    [
        (b"FROM alpine\n", False, "BuildKit 0.10"),
        (b"# syntax=docker/dockerfile:1.3\nFROM alpine\n", True, "frontend 1.4"),
        (b"FROM alpine\nFROM scratch AS alpine\n", True, "would replace the stage"),
    ],
    ids=["old builtin frontend", "old syntax frontend", "image named like a stage"],
)
def test_buildkit_refuses_when_named_contexts_would_not_pin(
    data: bytes, builtin: bool, fragment: str
) -> None:
    pins = {"alpine": f"alpine@{D1}", "docker/dockerfile:1.3": f"docker/dockerfile@{D2}"}
    with pytest.raises(Refused, match=fragment):
        buildkit(bk(data), pins, builtin_named_contexts=builtin)


def test_user_contexts_decide_their_names_and_image_ones_are_pinned() -> None:
    data = b"FROM alpine\nFROM base\nCOPY --from=src /x /y\n"
    user = [
        NamedContext("base", "docker-image://org/base:1", NamedKind.IMAGE,
                     parse_reference("org/base:1")),
        NamedContext("src", "./src", NamedKind.LOCAL_DIR, None),
        NamedContext("extra", "docker-image://other:2", NamedKind.IMAGE,
                     parse_reference("other:2")),
    ]
    scanned = bk(data)
    assert [str(r) for r in images_to_verify(scanned, user)] == [
        "docker.io/library/alpine", "docker.io/org/base:1", "docker.io/library/other:2"]
    pins = {"alpine": f"alpine@{D1}", "org/base:1": f"org/base@{D2}", "other:2": f"other@{D3}"}
    got = buildkit(scanned, pins, user=user, builtin_named_contexts=True)
    assert got.contexts == (
        ("alpine", f"docker-image://docker.io/library/alpine@{D1}"),
        ("base", f"docker-image://docker.io/org/base@{D2}"),
        ("extra", f"docker-image://docker.io/library/other@{D3}"),
    )


def test_remote_user_context_is_refused() -> None:
    user = [NamedContext("x", "https://github.com/o/r.git", NamedKind.REMOTE, None)]
    with pytest.raises(Refused, match="cannot be verified"):
        buildkit(bk(b"FROM alpine\n"), {"alpine": f"alpine@{D1}"}, user=user,
                 builtin_named_contexts=True)
