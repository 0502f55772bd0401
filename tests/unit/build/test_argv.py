"""The build command lines: docker/cli v28.2.2 (legacy builder) and buildx v0.36.1 grammar."""

from __future__ import annotations

import pytest

from safedocker.build.argv import (
    BUILDX_FLAGS,
    DEFAULT_SBOM_GENERATOR,
    LEGACY_FLAGS,
    BuildInvocation,
    ContextKind,
    DockerfileSource,
    NamedKind,
    parse,
    rebuild,
    select_builder,
)
from safedocker.build.model import Builder
from safedocker.errors import ExitCode, UsageError

LEGACY = Builder.LEGACY
BUILDKIT = Builder.BUILDKIT
LOCAL = {".", "app", "ctx", "https:/x.git"}  # directories that exist in these tests


def run(argv: list[str], builder: Builder = BUILDKIT,
        env: dict[str, str] | None = None) -> BuildInvocation:
    return parse(argv, builder=builder, env=env or {}, path_exists=LOCAL.__contains__,
                 path_is_dir=LOCAL.__contains__)


# argv -> (command words, context text, -f value)
ACCEPTED = [
    (["build", "."], LEGACY, ("build",), ".", None),
    (["image", "build", "-t", "x", "app"], LEGACY, ("image", "build"), "app", None),
    (["builder", "build", "."], LEGACY, ("builder", "build"), ".", None),
    (["build", ".", "-t", "x"], LEGACY, ("build",), ".", None),  # interspersed
    (["build", "-qf", "D", "."], LEGACY, ("build",), ".", "D"),  # combined shorts
    (["build", "-fD", "."], LEGACY, ("build",), ".", "D"),
    (["build", "-f=D", "."], LEGACY, ("build",), ".", "D"),  # pflag drops the "="
    (["build", "--file=D", "--file", "E", "."], LEGACY, ("build",), ".", "E"),  # last wins
    (["build", "--rm=false", "--no-cache", "--pull", "."], LEGACY, ("build",), ".", None),
    (["build", "--", "."], LEGACY, ("build",), ".", None),
    (["build", "-"], LEGACY, ("build",), "-", None),
    (["-H", "unix:///d.sock", "--context", "c", "build", "."], LEGACY, ("build",), ".", None),
    (["build", "--secret", "id=a", "--ssh", "default", "-o", "type=local,dest=o", "."], BUILDKIT,
     ("build",), ".", None),
    (["buildx", "build", "--load", "."], BUILDKIT, ("buildx", "build"), ".", None),
    (["buildx", "b", "."], BUILDKIT, ("buildx", "build"), ".", None),
    (["buildx", "--builder", "b", "-D", "build", "."], BUILDKIT, ("buildx", "build"), ".", None),
    # docker runs `builder` as `buildx` under BuildKit: buildx's root flags come first
    (["builder", "--builder", "b", "build", "."], BUILDKIT, ("builder", "build"), ".", None),
    (["builder", "--builder=b", "-D", "build", "-f", "D", "."], BUILDKIT, ("builder", "build"),
     ".", "D"),
    (["build", "--builder", "b", "--check", "."], BUILDKIT, ("build",), ".", None),
    (["build", "--check=true", "--call=outline", "."], BUILDKIT, ("build",), ".", None),
    (["build", "-m", "1g", "--squash", "--isolation=x", "."], BUILDKIT, ("build",), ".", None),
]


@pytest.mark.parametrize(("argv", "builder", "command", "context", "dockerfile"), ACCEPTED,
                         ids=[" ".join(a[0]) for a in ACCEPTED])
def test_build_command_line_parses_like_docker(
    argv: list[str], builder: Builder, command: tuple[str, ...], context: str,
    dockerfile: str | None,
) -> None:
    inv = run(argv, builder)
    assert inv.command == command
    assert inv.context_text == context
    assert inv.dockerfile == dockerfile


REFUSED = [
    (["build", "--secret", "id=a", "."], LEGACY, r"option of BuildKit \(buildx\)"),
    (["build", "--squash=maybe", "."], LEGACY, "invalid argument"),
    (["build", "--compress", "--stream", "."], LEGACY, "unknown flag: --stream"),
    (["build", "-x", "."], LEGACY, "unknown flag: -x"),
    (["build", "-qx", "."], LEGACY, "-x in -qx"),
    (["build", "--invoke", "sh", "."], BUILDKIT, "unknown flag: --invoke"),  # old buildx only
    (["build", "--disable-content-trust", "."], BUILDKIT, "legacy builder"),
    (["build"], LEGACY, "requires exactly 1 argument"),
    (["build", ".", "app"], LEGACY, "requires exactly 1 argument"),
    (["build", "-f"], LEGACY, "needs an argument"),
    (["build", "---x", "."], LEGACY, "bad flag syntax"),
    (["build", "nowhere"], LEGACY, "not found"),
    (["buildx", "build", "."], LEGACY, "always builds with BuildKit"),
    # the legacy builder's `builder` group has no such flag (docker: unknown flag)
    (["builder", "--builder", "b", "build", "."], LEGACY, "unknown flag: --builder"),
    (["buildx", "bake"], BUILDKIT, "not a build command"),
    (["run", "alpine"], LEGACY, "not a build command"),
    (["build", "--build-arg", "=x", "."], LEGACY, "empty name"),
    (["build", "--build-context", "Bad=./x", "."], BUILDKIT, "invalid context name"),
    (["build", "--build-context", "x", "."], BUILDKIT, "expected key=value"),
]


@pytest.mark.parametrize(("argv", "builder", "fragment"), REFUSED,
                         ids=[" ".join(r[0]) for r in REFUSED])
def test_unknown_or_wrong_options_are_refused_with_a_hint(
    argv: list[str], builder: Builder, fragment: str
) -> None:
    with pytest.raises(UsageError, match=fragment) as caught:
        run(argv, builder)
    assert caught.value.exit_code == ExitCode.USAGE


def test_unknown_option_hint_says_how_to_proceed() -> None:
    with pytest.raises(UsageError) as caught:
        run(["build", "--frobnicate", "."], LEGACY)
    assert "safe-docker refuses options it does not know" in caught.value.line()


def test_builders_root_flag_names_the_builder_as_buildx_reads_it() -> None:
    assert run(["builder", "--builder", "b", "build", "."], BUILDKIT).last("builder") == "b"


def test_help_needs_no_context() -> None:
    inv = run(["build", "--help"], LEGACY)
    assert inv.help and inv.context_index is None


def test_every_option_has_one_spelling_per_builder() -> None:
    for flags in (LEGACY_FLAGS, BUILDX_FLAGS):
        shorts = [f.short for f in flags.values() if f.short]
        assert len(shorts) == len(set(shorts))
    assert "build-context" in BUILDX_FLAGS and "build-context" not in LEGACY_FLAGS


# ------------------------------------------------------------------ contexts


@pytest.mark.parametrize(
    ("context", "builder", "kind"),
    [
        (".", LEGACY, ContextKind.LOCAL_DIR),
        ("-", BUILDKIT, ContextKind.STDIN),
        ("https://github.com/o/r.git#main:dir", LEGACY, ContextKind.REMOTE),
        ("https://example.com/ctx.tar.gz", LEGACY, ContextKind.REMOTE),
        ("git://example.com/r", LEGACY, ContextKind.REMOTE),
        ("git@github.com:o/r.git", LEGACY, ContextKind.REMOTE),
        ("github.com/o/r", LEGACY, ContextKind.REMOTE),
        ("https://github.com/o/r.git", BUILDKIT, ContextKind.REMOTE),
        ("ssh://git@h/r.git", BUILDKIT, ContextKind.REMOTE),
        ("user@host:repo", BUILDKIT, ContextKind.REMOTE),
        ("http://example.com/Dockerfile", BUILDKIT, ContextKind.REMOTE),
        ("https:/x.git", BUILDKIT, ContextKind.LOCAL_DIR),  # an existing directory wins
    ],
)
def test_context_is_classified_as_docker_does(
    context: str, builder: Builder, kind: ContextKind
) -> None:
    assert run(["build", context], builder).context is kind


def test_remote_context_is_unverifiable() -> None:
    inv = run(["build", "https://github.com/o/r.git"], BUILDKIT)
    assert any("is remote" in r for r in inv.unverifiable())


@pytest.mark.parametrize(
    ("argv", "builder", "source", "path"),
    [
        (["build", "ctx"], LEGACY, DockerfileSource.PATH, "ctx/Dockerfile"),
        (["build", "-f", "other/D", "ctx"], LEGACY, DockerfileSource.PATH, "other/D"),
        (["build", "-f", "-", "ctx"], BUILDKIT, DockerfileSource.STDIN, None),
        (["build", "-"], LEGACY, DockerfileSource.IN_STDIN_CONTEXT, "Dockerfile"),
        (["build", "-f", "sub/D", "-"], BUILDKIT, DockerfileSource.IN_STDIN_CONTEXT, "sub/D"),
        (["build", "-f", "https://x/Dockerfile", "."], BUILDKIT, DockerfileSource.REMOTE,
         "https://x/Dockerfile"),
    ],
)
def test_dockerfile_location_follows_the_context_and_f(
    argv: list[str], builder: Builder, source: DockerfileSource, path: str | None
) -> None:
    location = run(argv, builder).dockerfile_location()
    assert (location.source, location.path) == (source, path)


def test_stdin_cannot_be_context_and_dockerfile() -> None:
    with pytest.raises(UsageError, match="stdin for both"):
        run(["build", "-f", "-", "-"], LEGACY).dockerfile_location()


# ------------------------------------------------------------------ values


def test_build_arg_without_value_takes_the_environment_or_is_unset() -> None:
    argv = ["build", "--build-arg", "A=1", "--build-arg", "HOME_", "--build-arg", "B",
            "--build-arg", "A=2", "."]
    env = {"HOME_": "/h"}
    assert run(argv, LEGACY, env).build_args() == {"A": "2", "HOME_": "/h", "B": None}
    assert run(argv, BUILDKIT, env).build_args() == {"A": "2", "HOME_": "/h"}


def test_platforms_split_commas_for_buildkit_and_default_from_the_environment() -> None:
    env = {"DOCKER_DEFAULT_PLATFORM": "linux/arm64"}
    assert run(["build", "--platform", "linux/amd64,linux/arm64", "--platform=linux/s390x", "."],
               BUILDKIT).platforms == ("linux/amd64", "linux/arm64", "linux/s390x")
    assert run(["build", "."], BUILDKIT, env).platforms == ("linux/arm64",)
    assert run(["build", "--platform", "a", "--platform", "linux/arm64", "."],
               LEGACY).platforms == ("linux/arm64",)


def test_named_contexts_are_normalized_and_classified() -> None:
    inv = run(["build",
               "--build-context", "docker.io/library/alpine:latest=docker-image://alpine@sha256:"
               + "a" * 64,
               "--build-context", "src=./src",
               "--build-context", "repo=https://github.com/o/r.git",
               "--build-context", "lay=oci-layout://./l",
               "--build-context", "t=target:x",
               "--build-context", "src=app", "."], BUILDKIT)
    got = {c.key: (c.kind, c.value) for c in inv.named_contexts}
    assert got == {
        "alpine": (NamedKind.IMAGE, "docker-image://alpine@sha256:" + "a" * 64),
        "src": (NamedKind.LOCAL_DIR, "app"),
        "repo": (NamedKind.REMOTE, "https://github.com/o/r.git"),
        "lay": (NamedKind.OCI_LAYOUT, "oci-layout://./l"),
        "t": (NamedKind.TARGET, "target:x"),
    }
    reasons = inv.unverifiable()
    assert len(reasons) == 3 and all("cannot verify" in r for r in reasons)


@pytest.mark.parametrize(
    ("argv", "builder", "local"),
    [
        (["build", "--cache-from", "a/b:c,d/e", "."], LEGACY, [False, False]),
        (["build", "--cache-from", "user/app:cache", "."], BUILDKIT, [False]),
        (["build", "--cache-from", "type=registry,ref=u/a", "."], BUILDKIT, [False]),
        (["build", "--cache-from", "type=gha", "."], BUILDKIT, [False]),
        (["build", "--cache-from", "type=local,src=/c", "."], BUILDKIT, [True]),
    ],
)
def test_cache_sources_other_than_local_ones_are_unverifiable(
    argv: list[str], builder: Builder, local: list[bool]
) -> None:
    inv = run(argv, builder)
    assert [c.local for c in inv.cache_from] == local
    assert len(inv.unverifiable()) == local.count(False)


def test_policy_that_is_not_disabled_is_unverifiable() -> None:
    assert run(["build", "--policy", "filename=p.rego", "."]).unverifiable()
    assert not run(["build", "--policy", "disabled=true", "."]).unverifiable()


@pytest.mark.parametrize(
    ("options", "generator"),
    [
        ([], None),
        (["--sbom=true"], DEFAULT_SBOM_GENERATOR),
        (["--sbom=generator=me/scan:1"], "me/scan:1"),
        (["--attest", "type=sbom"], DEFAULT_SBOM_GENERATOR),
        (["--attest", "type=sbom,generator=a/b"], "a/b"),
        (["--attest", "type=sbom,generator=a/b", "--sbom=false"], None),
        (["--attest", "type=provenance,mode=max"], None),
    ],
)
def test_sbom_generator_is_the_image_buildkit_runs(
    options: list[str], generator: str | None
) -> None:
    sbom = run(["build", *options, "."]).sbom
    assert (sbom.generator if sbom else None) == generator


# ------------------------------------------------------------------ builder selection


@pytest.mark.parametrize(
    ("command", "env", "buildx", "alias", "expected"),
    [
        (("build",), {}, True, None, BUILDKIT),
        (("build",), {}, False, None, LEGACY),
        (("build",), {"DOCKER_BUILDKIT": "0"}, True, None, LEGACY),
        (("image", "build"), {"DOCKER_BUILDKIT": "false"}, True, "buildx", LEGACY),
        (("build",), {"DOCKER_BUILDKIT": "1"}, True, None, BUILDKIT),
        (("builder", "build"), {}, False, None, LEGACY),
        (("buildx", "build"), {"DOCKER_BUILDKIT": "0"}, True, None, BUILDKIT),
    ],
)
def test_builder_is_selected_as_docker_does(
    command: tuple[str, ...], env: dict[str, str], buildx: bool, alias: str | None,
    expected: Builder,
) -> None:
    assert select_builder(command, env, buildx_installed=buildx, builder_alias=alias) is expected


@pytest.mark.parametrize(
    ("env", "buildx", "alias", "fragment"),
    [
        ({"DOCKER_BUILDKIT": "yes"}, True, None, "expects boolean"),
        ({"DOCKER_BUILDKIT": "1"}, False, None, "buildx component is missing"),
        ({}, False, "buildx", "buildx component is missing"),
        ({}, True, "kaniko", "not buildx"),
    ],
)
def test_builder_selection_fails_where_docker_fails(
    env: dict[str, str], buildx: bool, alias: str | None, fragment: str
) -> None:
    with pytest.raises(UsageError, match=fragment):
        select_builder(("build",), env, buildx_installed=buildx, builder_alias=alias)


# ------------------------------------------------------------------ rebuilding

DIGEST = "sha256:" + "c" * 64


def test_rebuild_adds_contexts_before_the_context_and_keeps_every_other_token() -> None:
    argv = ["-D", "build", "-t", "app:1", ".", "--build-arg", "X=1"]
    inv = run(argv)
    out = rebuild(inv, contexts=[("alpine:3.19", f"docker-image://alpine@{DIGEST}")])
    assert out == ["-D", "build", "-t", "app:1",
                   f"--build-context=alpine:3.19=docker-image://alpine@{DIGEST}", ".",
                   "--build-arg", "X=1"]


def test_rebuild_replaces_the_users_context_of_the_same_name() -> None:
    inv = run(["build", "--build-context", "docker.io/library/alpine=docker-image://alpine:3",
               "--build-context", "src=app", "."])
    out = rebuild(inv, contexts=[("alpine", f"docker-image://alpine@{DIGEST}")])
    assert out == ["build", "--build-context", "src=app",
                   f"--build-context=alpine=docker-image://alpine@{DIGEST}", "."]


def test_rebuild_swaps_f_even_inside_combined_shorts() -> None:
    inv = run(["build", "-qf", "Dockerfile", "--file=x", "-t", "a", "."], LEGACY)
    assert rebuild(inv, dockerfile="/tmp/pinned") == [
        "build", "--quiet", "-t", "a", "--file=/tmp/pinned", "."]


def test_rebuild_goes_before_a_dash_dash() -> None:
    inv = run(["build", "-t", "a", "--", "."], LEGACY)
    assert rebuild(inv, dockerfile="/d") == ["build", "-t", "a", "--file=/d", "--", "."]


def test_rebuild_sets_build_args_and_pins_the_sbom_generator() -> None:
    inv = run(["build", "--build-arg", "BUILDKIT_SYNTAX=docker/dockerfile:1",
               "--sbom=true", "--attest", "type=sbom,scan-stage=true", "."])
    out = rebuild(inv, build_args=[("BUILDKIT_SYNTAX", f"docker/dockerfile@{DIGEST}")],
                  sbom_generator=f"docker.io/docker/buildkit-syft-scanner@{DIGEST}")
    assert out == ["build", f"--build-arg=BUILDKIT_SYNTAX=docker/dockerfile@{DIGEST}",
                   f"--attest=type=sbom,generator=docker.io/docker/buildkit-syft-scanner@{DIGEST}",
                   "."]


def test_rebuild_refuses_contexts_for_the_legacy_builder() -> None:
    with pytest.raises(UsageError, match="needs BuildKit"):
        rebuild(run(["build", "."], LEGACY), contexts=[("a", "docker-image://a")])
