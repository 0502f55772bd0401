"""What a Dockerfile makes the builder pull, read with buildkit's and moby's rules.

Each attack case is a Dockerfile whose image a naive reader gets wrong.
"""

from __future__ import annotations

import pytest

from safedocker.build.dockerfile import (
    MAX_DOCKERFILE,
    Platforms,
    Use,
    scan,
    trigger_images,
)
from safedocker.build.frontend import detect_frontend
from safedocker.build.model import Builder, Platform
from safedocker.build.parser import HeredocMode, parse
from safedocker.errors import ExitCode, Refused, UsageError

LEGACY = Builder.LEGACY
BUILDKIT = Builder.BUILDKIT
AMD64 = Platforms(build="linux/amd64")


def images(text: str | bytes, builder: Builder = BUILDKIT, **kw: object) -> list[str]:
    """The external images, normalized, as ``use@line name``."""
    data = text.encode() if isinstance(text, str) else text
    kw.setdefault("platforms", AMD64)
    found = scan(data, builder=builder, **kw)  # type: ignore[arg-type]
    return [f"{u.use.name}@{u.line} {u.ref}" for u in found.images]


# (name, Dockerfile, builder, build args, expected images)
CASES = [
    ("plain FROM", "FROM alpine:3.19\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine:3.19"]),
    ("keyword case does not matter", "fRoM alpine\nrun true\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine"]),
    ("scratch is no image", "FROM scratch\nCOPY x /\n", BUILDKIT, {}, []),
    ("unsigned base through an ARG default", "ARG BASE=evil/unsigned\nFROM $BASE\n", BUILDKIT,
     {}, ["FROM@2 docker.io/evil/unsigned"]),
    ("unsigned base through an ARG default (legacy)", "ARG BASE=evil/unsigned\nFROM ${BASE}\n",
     LEGACY, {}, ["FROM@2 docker.io/evil/unsigned"]),
    ("--build-arg switches the base", "ARG BASE=evil/unsigned\nFROM $BASE\n", BUILDKIT,
     {"BASE": "good/signed:1"}, ["FROM@2 docker.io/good/signed:1"]),
    ("--build-arg switches the base (legacy)", "ARG BASE=evil\nFROM $BASE\n", LEGACY,
     {"BASE": "good/signed"}, ["FROM@2 docker.io/good/signed"]),
    ("--build-arg without a value keeps the default (legacy nil)", "ARG B=alpine\nFROM $B\n",
     LEGACY, {"B": None}, ["FROM@2 docker.io/library/alpine"]),
    ("an undeclared --build-arg does not reach FROM", "FROM ${BASE:-alpine}\n", BUILDKIT,
     {"BASE": "evil"}, ["FROM@1 docker.io/library/alpine"]),
    ("an undeclared --build-arg does not reach FROM (legacy)", "FROM ${BASE:-alpine}\n", LEGACY,
     {"BASE": "evil"}, ["FROM@1 docker.io/library/alpine"]),
    ("ARGs build on each other", "ARG R=ghcr.io\nARG IMG=${R}/org/app\nARG T\n"
     "FROM ${IMG}:${T:-1.0}\n", BUILDKIT, {}, ["FROM@4 ghcr.io/org/app:1.0"]),
    ("an ARG inside a stage does not reach FROM",
     "FROM alpine AS a\nARG X=evil\nFROM ${X:-busybox}\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine", "FROM@3 docker.io/library/busybox"]),
    ("a later stage named like an image is a stage", "FROM evil AS alpine\nFROM alpine\n",
     BUILDKIT, {}, ["FROM@1 docker.io/library/evil"]),
    ("a later stage named like an image is a stage (legacy)", "FROM evil AS alpine\nFROM alpine\n",
     LEGACY, {}, ["FROM@1 docker.io/library/evil"]),
    ("an image used before a stage of its name is the image",
     "FROM alpine\nFROM scratch AS alpine\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine"]),
    ("a stage that names itself builds on the image", "FROM alpine AS alpine\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine"]),
    ("stage names are case-insensitive for the legacy builder",
     "FROM alpine AS Build\nFROM BUILD\n", LEGACY, {}, ["FROM@1 docker.io/library/alpine"]),
    ("COPY --from an image", "FROM alpine\nCOPY --from=evil:1 /x /y\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine", "COPY_FROM@2 docker.io/library/evil:1"]),
    ("COPY --from an image (legacy)", "FROM alpine\nCOPY --from=evil:1 /x /y\n", LEGACY, {},
     ["FROM@1 docker.io/library/alpine", "COPY_FROM@2 docker.io/library/evil:1"]),
    ("COPY --from a stage, any case, or an index", "FROM alpine AS b\nFROM scratch\n"
     "COPY --from=B /x /y\nCOPY --from=0 /x /z\nCOPY --from=scratch /x /w\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine"]),
    ("COPY --from a later stage is an image for the legacy builder",
     "FROM alpine\nCOPY --from=later /x /y\nFROM busybox AS later\n", LEGACY, {},
     ["FROM@1 docker.io/library/alpine", "COPY_FROM@2 docker.io/library/later",
      "FROM@3 docker.io/library/busybox"]),
    ("COPY --from a later stage is that stage for BuildKit",
     "FROM alpine\nCOPY --from=later /x /y\nFROM busybox AS later\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine", "FROM@3 docker.io/library/busybox"]),
    ("COPY --from with quotes", 'FROM alpine\nCOPY --from="evil" /x /y\n', BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine", "COPY_FROM@2 docker.io/library/evil"]),
    ("ADD has no --from", "FROM alpine\nADD --chown=1 https://x/y /z\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine"]),
    ("ADD --from is no image source (docker rejects the flag)",
     "FROM alpine\nADD --from=evil /x /y\n", BUILDKIT, {}, ["FROM@1 docker.io/library/alpine"]),
    ("'as' in any case names a stage", "FROM alpine as Build\nFROM build\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine"]),
    ("RUN --mount from an image", "FROM alpine\nRUN --mount=type=bind,from=evil,target=/e true\n",
     BUILDKIT, {}, ["FROM@1 docker.io/library/alpine", "MOUNT_FROM@2 docker.io/library/evil"]),
    ("RUN --mount from, any mount type and key case",
     "FROM alpine\nRUN --mount=type=cache,target=/c,FROM=ghcr.io/x/y:2 true\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine", "MOUNT_FROM@2 ghcr.io/x/y:2"]),
    ("RUN --mount from a number is an image name", "FROM alpine\nRUN --mount=from=0 true\n",
     BUILDKIT, {}, ["FROM@1 docker.io/library/alpine", "MOUNT_FROM@2 docker.io/library/0"]),
    ("RUN --mount from a stage, or without from", "FROM alpine AS b\nFROM scratch\n"
     "RUN --mount=from=b,target=/b --mount=type=tmpfs,target=/t true\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine"]),
    ("the legacy builder never pulls a RUN --mount image",
     "FROM alpine\nRUN --mount=from=evil true\n", LEGACY, {},
     ["FROM@1 docker.io/library/alpine"]),
    ("line continuation joins a FROM", "FROM \\\n  # a comment in between\n\n  alpine:3.19\n",
     BUILDKIT, {}, ["FROM@1 docker.io/library/alpine:3.19"]),
    ("a heredoc body is content, not a FROM", "FROM alpine\nRUN <<EOF\nFROM evil\nEOF\n",
     BUILDKIT, {}, ["FROM@1 docker.io/library/alpine"]),
    ("old builders read a heredoc body as instructions when that parses",
     "FROM alpine\nRUN <<CMD\nFROM evil\nCMD\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine", "FROM@3 docker.io/library/evil"]),
    ("before Dockerfile 1.16 '<< EOF' was no heredoc",
     "FROM alpine\nRUN cat << ENTRYPOINT\nFROM evil\nENTRYPOINT\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine", "FROM@3 docker.io/library/evil"]),
    ("the escape directive makes the backtick continue a line",
     "# escape=`\nFROM alpine\nRUN echo `\nFROM evil\n", BUILDKIT, {},
     ["FROM@2 docker.io/library/alpine"]),
    ("under the backtick escape a backslash continues nothing",
     "# escape=`\nFROM alpine\nRUN echo \\\nFROM evil\n", BUILDKIT, {},
     ["FROM@2 docker.io/library/alpine", "FROM@4 docker.io/library/evil"]),
    ("an escape directive after a comment is just a comment",
     "# hello\n# escape=`\nFROM alpine\nRUN echo `\nFROM evil\n", BUILDKIT, {},
     ["FROM@3 docker.io/library/alpine", "FROM@5 docker.io/library/evil"]),
    ("a byte 0x85 ends a flag word, as in Go",
     b"FROM alpine\nCOPY --chown=x\xc2\x85--from=evil /a /b\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine", "COPY_FROM@2 docker.io/library/evil"]),
    ("a BOM is dropped", b"\xef\xbb\xbfFROM alpine\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine"]),
    ("ONBUILD COPY --from runs in the stage built on it",
     "FROM alpine AS base\nONBUILD COPY --from=evil /x /y\nFROM base\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine", "ONBUILD_COPY_FROM@2 docker.io/library/evil"]),
    ("ONBUILD without a stage built on it pulls nothing here",
     "FROM alpine\nONBUILD COPY --from=evil /x /y\n", BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine"]),
    ("ONBUILD RUN --mount from", "FROM alpine AS b\nONBUILD RUN --mount=from=evil true\nFROM b\n",
     BUILDKIT, {},
     ["FROM@1 docker.io/library/alpine", "ONBUILD_MOUNT_FROM@2 docker.io/library/evil"]),
]


@pytest.mark.parametrize(("dockerfile", "builder", "args", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_external_images_are_found(
    dockerfile: str | bytes, builder: Builder, args: dict[str, str | None], expected: list[str]
) -> None:
    assert images(dockerfile, builder, build_args=args) == expected


# (name, Dockerfile, builder, args, error type, message fragment)
ERRORS = [
    ("unknown instruction", "FROM alpine\nFRM evil\n", BUILDKIT, UsageError,
     "unknown instruction"),
    ("an instruction before FROM", "RUN true\nFROM alpine\n", BUILDKIT, UsageError,
     "before the first"),
    ("no FROM at all", "ARG A=1\n", BUILDKIT, UsageError, "no stages"),
    ("FROM with two words", "FROM alpine evil\n", BUILDKIT, UsageError, "one or three"),
    ("FROM flag other than --platform", "FROM --pull alpine\n", BUILDKIT, UsageError, "--pull"),
    ("a blank base", "ARG B\nFROM $B\n", BUILDKIT, UsageError, "blank"),
    ("uppercase image (the stage is lowercase for BuildKit)",
     "FROM alpine AS build\nFROM Build\n", BUILDKIT, UsageError, "lowercase"),
    ("variable in COPY --from", "ARG I=evil\nFROM alpine\nCOPY --from=$I /x /y\n", BUILDKIT,
     UsageError, "variable expansion"),
    ("variable in RUN --mount from", "FROM alpine\nRUN --mount=from=$I true\n", BUILDKIT,
     UsageError, "variable expansion"),
    ("repeated directive", "# escape=\\\n# escape=`\nFROM alpine\n", BUILDKIT, UsageError,
     "only one escape"),
    ("image ID", "FROM sha256:" + "a" * 64 + "\n", BUILDKIT, Refused, "image ID"),
    ("heredoc for the legacy builder", "FROM alpine\nRUN <<EOF\ntrue\nEOF\n", LEGACY, Refused,
     "heredoc"),
    ("unterminated heredoc", "FROM alpine\nRUN <<EOF\ntrue\n", BUILDKIT, UsageError,
     "unterminated"),
    ("# check before # escape", "# check=skip=all\n# escape=`\nFROM alpine\n", BUILDKIT,
     Refused, "check"),
    # Docker 20.10's parser matches `#\s*name=` (ASCII spaces only); newer ones trim any
    # Unicode space after '#': the old daemon keeps '\\' as the escape and sees other lines.
    ("a directive after '#' and a vertical tab (legacy)",
     "#\vescape=`\nFROM alpine\nRUN true #`\nFROM evil\n", LEGACY, Refused, "directive"),
    ("a directive after '#' and a no-break space (BuildKit)",
     "#\u00a0escape=`\nFROM alpine\nRUN true #`\nFROM evil\n", BUILDKIT, Refused,
     "directive"),
    ("a syntax directive after '#' and NEL ends the old directives early",
     "#\u0085syntax=docker/dockerfile:1\n# escape=`\nFROM alpine\n", BUILDKIT, Refused,
     "directive"),
    ("a custom frontend", "# syntax=evil/frontend:1\nFROM alpine\n", BUILDKIT, Refused,
     "frontend"),
    ("a platform ARG when the builder's platform is unknown",
     "FROM --platform=$BUILDPLATFORM golang\n", BUILDKIT, Refused, "BUILDPLATFORM"),
]


@pytest.mark.parametrize(("dockerfile", "builder", "error", "fragment"),
                         [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_dockerfile_is_refused(
    dockerfile: str, builder: Builder, error: type[Exception], fragment: str
) -> None:
    platforms = Platforms() if "platform" in dockerfile.lower() else AMD64
    with pytest.raises(error, match=fragment):
        scan(dockerfile.encode(), builder=builder, platforms=platforms)


def test_a_bad_dockerfile_is_a_usage_error_and_an_unverifiable_one_a_refusal() -> None:
    with pytest.raises(UsageError) as usage:
        scan(b"FRM x\n", builder=BUILDKIT)
    with pytest.raises(Refused) as refused:
        scan(b"# syntax=evil/x\nFROM a\n", builder=BUILDKIT)
    assert usage.value.exit_code == ExitCode.USAGE
    assert refused.value.exit_code == ExitCode.REFUSED


def test_oversized_dockerfile_is_refused_before_parsing() -> None:
    with pytest.raises(UsageError, match="larger than"):
        scan(b"#" * (MAX_DOCKERFILE + 1), builder=BUILDKIT)


# ------------------------------------------------------------------ the # syntax frontend


@pytest.mark.parametrize(
    ("dockerfile", "frontend"),
    [
        ("# syntax=docker/dockerfile:1.7\nFROM a\n", "docker.io/docker/dockerfile:1.7"),
        ("#syntax = docker/dockerfile:1 --opt\nFROM a\n", "docker.io/docker/dockerfile:1"),
        ("# escape=`\n# SYNTAX=docker/dockerfile:1.4\nFROM a\n", "docker.io/docker/dockerfile:1.4"),
        ("#!/usr/bin/env buildctl\n# syntax=docker/dockerfile:1\nFROM a\n",
         "docker.io/docker/dockerfile:1"),
    ],
    ids=["hash", "spaces and args", "after escape", "after a shebang"],
)
def test_syntax_frontend_is_an_image_buildkit_pulls_first(dockerfile: str, frontend: str) -> None:
    found = scan(dockerfile.encode(), builder=BUILDKIT, platforms=AMD64)
    assert found.images[0].use is Use.FRONTEND
    assert str(found.images[0].ref) == frontend


@pytest.mark.parametrize(
    ("dockerfile", "frontend"),
    [
        ("// syntax=docker/dockerfile-upstream:master\nFROM a\n",
         "docker.io/docker/dockerfile-upstream:master"),
        ('{"syntax": "docker/dockerfile:1.5"}', "docker.io/docker/dockerfile:1.5"),
        ("# check=skip=all\n# syntax=docker/dockerfile:1\n", "docker.io/docker/dockerfile:1"),
        ("# syntax=a/b:1\n# syntax=c/d:2\n", "docker.io/a/b:1"),
    ],
    ids=["slashes", "json", "after check", "first of two"],
)
def test_every_syntax_form_buildkit_forwards_is_detected(dockerfile: str, frontend: str) -> None:
    found = detect_frontend(dockerfile.encode(), {})
    assert found is not None
    assert str(found.ref) == frontend


@pytest.mark.parametrize("dockerfile", ["// syntax=evil/frontend\nFROM a\n",
                                        '{"syntax": "evil/frontend"}'])
def test_custom_frontend_in_any_form_is_refused_before_the_file_is_read(dockerfile: str) -> None:
    with pytest.raises(Refused, match="evil/frontend"):
        scan(dockerfile.encode(), builder=BUILDKIT, platforms=AMD64)


def test_syntax_after_a_blank_line_is_only_a_comment() -> None:
    found = scan(b"\n# syntax=evil/frontend\nFROM alpine\n", builder=BUILDKIT, platforms=AMD64)
    assert found.frontend is None


def test_buildkit_syntax_build_arg_overrides_the_directive() -> None:
    found = scan(b"# syntax=docker/dockerfile:1.2\nFROM alpine\n", builder=BUILDKIT,
                 build_args={"BUILDKIT_SYNTAX": "docker/dockerfile:1.5 --x"}, platforms=AMD64)
    assert found.frontend is not None
    assert (str(found.frontend.ref), found.frontend.cmdline, found.frontend.line) == (
        "docker.io/docker/dockerfile:1.5", "docker/dockerfile:1.5 --x", 0)
    with pytest.raises(Refused, match="evil/frontend"):
        scan(b"FROM alpine\n", builder=BUILDKIT, build_args={"BUILDKIT_SYNTAX": "evil/frontend"})


def test_legacy_builder_ignores_the_frontend_and_says_so() -> None:
    found = scan(b"# syntax=evil/frontend\nFROM alpine\n", builder=LEGACY)
    assert [u.use for u in found.images] == [Use.FROM]
    assert any("ignores the Dockerfile frontend" in note for note in found.notes)


@pytest.mark.parametrize(
    ("tag", "supported"),
    [("1", True), ("1.3", False), ("1.3-labs", False), ("1.4", True), ("1.7.1", True),
     ("labs", True), ("latest", True), ("0.9", False), ("weird", None)],
)
def test_frontend_named_context_support_follows_its_version(
    tag: str, supported: bool | None
) -> None:
    found = scan(f"# syntax=docker/dockerfile:{tag}\nFROM a\n".encode(), builder=BUILDKIT,
                 platforms=AMD64)
    assert found.frontend is not None
    assert found.frontend.named_contexts is supported


# ------------------------------------------------------------------ ARGs and platforms


def test_arg_declared_again_without_default_keeps_it_for_buildkit_not_legacy() -> None:
    dockerfile = "ARG B=alpine\nARG B\nFROM ${B:-busybox}\n"
    assert images(dockerfile, BUILDKIT) == ["FROM@3 docker.io/library/alpine"]
    assert images(dockerfile, LEGACY) == ["FROM@3 docker.io/library/busybox"]


def test_arg_on_the_same_line_is_seen_by_buildkit_only() -> None:
    dockerfile = "ARG A=alpine B=${A:-busybox}\nFROM $B\n"
    assert images(dockerfile, BUILDKIT) == ["FROM@2 docker.io/library/alpine"]
    assert images(dockerfile, LEGACY) == ["FROM@2 docker.io/library/busybox"]


def test_legacy_builder_expands_arg_names_too() -> None:
    dockerfile = "ARG N=BASE\nARG ${N}=evil\nFROM ${BASE:-alpine}\n"
    assert images(dockerfile, LEGACY) == ["FROM@3 docker.io/library/evil"]
    assert images(dockerfile, BUILDKIT) == ["FROM@3 docker.io/library/alpine"]


def test_platform_args_are_buildkits_own_and_empty_for_the_legacy_builder() -> None:
    dockerfile = "FROM ${TARGETARCH:-none}/base\n"
    assert images(dockerfile, BUILDKIT) == ["FROM@1 docker.io/amd64/base"]
    assert images(dockerfile, LEGACY) == ["FROM@1 docker.io/none/base"]


def test_each_target_platform_is_read_separately() -> None:
    found = scan(b"FROM --platform=$BUILDPLATFORM golang AS b\nFROM ${TARGETARCH}/app\n",
                 builder=BUILDKIT,
                 platforms=Platforms(build="linux/amd64", targets=("linux/arm64", "arm")))
    got = [(str(u.ref), u.platform, u.target_platform) for u in found.images]
    assert got == [
        ("docker.io/library/golang", "linux/amd64", "linux/arm64"),
        ("docker.io/arm64/app", None, "linux/arm64"),
        ("docker.io/library/golang", "linux/amd64", "linux/arm/v7"),
        ("docker.io/arm/app", None, "linux/arm/v7"),
    ]


def test_build_arg_overrides_a_platform_arg() -> None:
    found = images("FROM ${TARGETOS}/x\n", BUILDKIT, build_args={"TARGETOS": "evil"})
    assert found == ["FROM@1 docker.io/evil/x"]


@pytest.mark.parametrize(("text", "normal"), [("linux/amd64", "linux/amd64"),
                                              ("x86_64", "linux/amd64"),
                                              ("linux/aarch64", "linux/arm64"),
                                              ("linux/arm64/v8", "linux/arm64"),
                                              ("linux/armhf", "linux/arm/v7"),
                                              ("Linux/ARM/6", "linux/arm/v6")])
def test_platforms_normalize_as_containerd(text: str, normal: str) -> None:
    assert str(Platform.parse(text)) == normal


# ------------------------------------------------------------------ spans, shadows, triggers


def test_spans_point_at_the_written_token() -> None:
    data = b"ARG B=alpine\nFROM --platform=linux/amd64 ${B} AS x\nCOPY --from=busybox /a /b\n"
    found = scan(data, builder=LEGACY)
    assert [data[u.span[0]:u.span[1]] for u in found.images if u.span] == [
        b"${B}", b"--from=busybox"]


def test_token_split_by_a_continuation_has_no_span() -> None:
    found = scan(b"FROM alp\\\nine\n", builder=LEGACY)
    assert str(found.images[0].ref) == "docker.io/library/alpine"
    assert found.images[0].span is None


def test_shadow_is_an_image_whose_context_name_is_a_stage() -> None:
    found = scan(b"FROM alpine\nFROM scratch AS alpine\nFROM alpine:3.19\n", builder=BUILDKIT,
                 platforms=AMD64)
    assert [str(u.ref) for u in found.shadows()] == ["docker.io/library/alpine"]


def test_base_image_onbuild_triggers_are_read_like_the_dockerfile() -> None:
    found = scan(b"FROM base\nFROM scratch AS s\n", builder=BUILDKIT, platforms=AMD64)
    triggers = ["COPY --from=evil /x /y", "COPY --from=s /a /b", "RUN --mount=from=m true",
                "RUN echo hi"]
    got = [(u.use, str(u.ref), u.line) for u in trigger_images(triggers, found, stage=0)]
    assert got == [(Use.ONBUILD_COPY_FROM, "docker.io/library/evil", 1),
                   (Use.ONBUILD_MOUNT_FROM, "docker.io/library/m", 1)]


def test_readings_count_the_heredoc_interpretations_scanned() -> None:
    assert scan(b"FROM a\nRUN true\n", builder=BUILDKIT).readings == 1
    assert scan(b"FROM a\nRUN <<EOF\nx\nEOF\n", builder=BUILDKIT).readings == 2


def test_parser_heredoc_modes_differ_exactly_on_spaced_and_any_heredoc() -> None:
    data = b"FROM a\nRUN cat << X\nbody\nX\n"
    assert len(parse(data, heredocs=HeredocMode.SPACED).nodes) == 2
    assert len(parse(data, heredocs=HeredocMode.TIGHT).nodes) == 4
    assert len(parse(data, heredocs=HeredocMode.NONE).nodes) == 4


@pytest.mark.parametrize("tag", ["1.7", "1", "latest", ""])
def test_a_frontend_named_by_digest_has_unknown_named_context_support_whatever_its_tag(
        tag: str) -> None:
    # BuildKit runs the digest; "docker/dockerfile:1.7@sha256:<1.3's digest>" is 1.3, which
    # ignores --build-context: the images would be pulled by tag, unpinned.
    name = f"docker/dockerfile:{tag}" if tag else "docker/dockerfile"
    found = scan(f"# syntax={name}@sha256:{'a' * 64}\nFROM a\n".encode(), builder=BUILDKIT,
                 platforms=AMD64)
    assert found.frontend is not None
    assert found.frontend.named_contexts is None
