"""Builds: argv → every image through the gate → the pinned build (over fakes: no docker).

The gate is the real one over fakes of the daemon and the verifier (tests/unit/gate/
fakes.py); the builder is chosen through a fake docker CLI. What docker would be handed is
read from the plan: its argv, the private Dockerfile it names, the bytes it gets on stdin.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from safedocker._docker.engine import LocalImage
from safedocker.errors import (
    ExitCode,
    Refused,
    RegistryUnavailable,
    SafeDockerError,
    UsageError,
)
from safedocker.gate.build import plan_build
from safedocker.gate.build_client import BuildClient, Kind, choose_builder
from safedocker.policy.model import Action, Mode
from safedocker.reference import Digest
from tests.unit.gate.fakes import CONFIG, INDEX, REG, FakeVerifier, World, verdict

if TYPE_CHECKING:
    from collections.abc import Mapping

    from safedocker.gate.handoff import Plan
    from safedocker.verify.verdict import Verdict

BASE = f"{REG}/ns/base:v1"
EVIL = f"{REG}/ns/evil:v1"
TOOLS = f"{REG}/ns/tools:v1"
D_BASE = Digest.of(b"base index")
D_TOOLS = Digest.of(b"tools index")
D_EVIL = Digest.of(b"evil index")
LEGACY_ENV = {"DOCKER_BUILDKIT": "0"}


@dataclass
class FakeClient:
    """A docker CLI: its version, whether buildx is there, the builder alias."""

    version: tuple[int, int] | None = (28, 2)
    buildx: bool = False
    alias: str | None = None
    contexts: bool = True
    asked: list[str] = field(default_factory=list)
    proxies: tuple[dict[str, str], ...] = ()
    native: bool = True  # the buildx builder is the docker driver

    def cli_version(self) -> tuple[int, int] | None:
        self.asked.append("version")
        return self.version

    def buildx_installed(self) -> bool:
        self.asked.append("buildx")
        return self.buildx

    def builder_alias(self) -> str | None:
        return self.alias

    def named_contexts(self, builder: str | None) -> bool:
        self.asked.append(f"inspect {builder}")
        return self.contexts

    def proxy_build_args(self) -> tuple[dict[str, str], ...]:
        return self.proxies

    def native_platform(self, builder: str | None) -> bool:
        return self.native


_client: BuildClient = FakeClient()


@dataclass
class ConfigVerifier(FakeVerifier):
    """A verifier that also serves image configs, by reference."""

    configs: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def image_config(self, verdict: Verdict) -> Mapping[str, Any] | None:
        return self.configs.get(str(verdict.ref))


@pytest.fixture
def world() -> World:
    w = World(verifier=ConfigVerifier())
    w.verifier.verdicts[BASE] = verdict(BASE, covered=D_BASE, digest=D_BASE)
    w.verifier.verdicts[TOOLS] = verdict(TOOLS, covered=D_TOOLS, digest=D_TOOLS)
    w.verifier.verdicts[EVIL] = verdict(EVIL, accepted=False, digest=D_EVIL,
                                        reasons=("no signature found",))
    return w


def build(world: World, tmp_path: Path, dockerfile: str | bytes, *args: str,
          env: dict[str, str] | None = None, client: FakeClient | None = None,
          stdin: bytes = b"", command: tuple[str, ...] = ("build",)) -> Plan:
    """Build ``tmp_path/ctx`` holding ``dockerfile``; ``-`` as the last arg: stdin."""
    context = tmp_path / "ctx"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_bytes(
        dockerfile.encode() if isinstance(dockerfile, str) else dockerfile)
    argv = [*command, *args] + ([] if args[-1:] == ("-",) else [str(context)])
    return plan_build(argv, gate=world.gate, client=client or FakeClient(),
                      stdin=io.BytesIO(stdin), environ=env if env is not None else LEGACY_ENV)


def handed(plan: Plan) -> str:
    """The Dockerfile docker is handed (-f), read from the plan's private directory."""
    (command,) = plan.commands
    given = [t.removeprefix("--file=") for t in command if t.startswith("--file=")]
    assert len(given) == 1, command
    assert plan.workdir is not None and given[0].startswith(plan.workdir)
    return Path(given[0]).read_text()


def refused(world: World, tmp_path: Path, dockerfile: str, *args: str,
            **kw: Any) -> SafeDockerError:
    with pytest.raises(SafeDockerError) as info:
        build(world, tmp_path, dockerfile, *args, **kw)
    return info.value


def cleanup(plan: Plan) -> None:
    if plan.workdir:
        shutil.rmtree(plan.workdir)


# --- the legacy builder: a rewritten Dockerfile ---------------------------------------------


def test_a_signed_base_is_handed_over_pinned_in_a_private_copy(world: World,
                                                                tmp_path: Path) -> None:
    plan = build(world, tmp_path, f"FROM {BASE}\nRUN echo hi\n", "-t", "out")
    (command,) = plan.commands
    assert command[:3] == ("build", "-t", "out")
    assert command[-1] == str(tmp_path / "ctx")
    assert handed(plan) == f"FROM {REG}/ns/base@{D_BASE}\nRUN echo hi\n"
    assert (tmp_path / "ctx" / "Dockerfile").read_text() == f"FROM {BASE}\nRUN echo hi\n"
    assert [e["outcome"] for e in world.audit.entries] == ["accepted"]
    cleanup(plan)


def test_an_unsigned_stage_refuses_the_whole_build_and_every_image_is_recorded(
        world: World, tmp_path: Path) -> None:
    error = refused(world, tmp_path, f"FROM {EVIL} AS tools\nFROM {BASE}\nCOPY --from=tools "
                    "/x /x\n")
    assert error.exit_code == ExitCode.REFUSED
    assert EVIL in error.what and "Dockerfile line 1, FROM" in error.what
    assert sorted(e["outcome"] for e in world.audit.entries) == ["accepted", "refused"]


def test_an_unsigned_base_through_an_arg_default_is_refused(world: World,
                                                            tmp_path: Path) -> None:
    error = refused(world, tmp_path, f"ARG IMG={EVIL}\nFROM $IMG\n")
    assert error.exit_code == ExitCode.REFUSED and EVIL in error.what


def test_a_build_arg_choosing_a_signed_base_is_pinned(world: World, tmp_path: Path) -> None:
    plan = build(world, tmp_path, f"ARG IMG={EVIL}\nFROM ${{IMG}}\n", "--build-arg",
                 f"IMG={BASE}")
    assert handed(plan) == f"ARG IMG={EVIL}\nFROM {REG}/ns/base@{D_BASE}\n"
    assert [str(r) for r, _ in world.verifier.asked] == [BASE]
    cleanup(plan)


def test_copy_from_an_unsigned_image_is_refused(world: World, tmp_path: Path) -> None:
    error = refused(world, tmp_path, f"FROM {BASE}\nCOPY --from={EVIL} /bin/x /x\n")
    assert EVIL in error.what and "COPY --from" in error.what


def test_copy_from_a_signed_image_is_pinned(world: World, tmp_path: Path) -> None:
    plan = build(world, tmp_path, f"FROM scratch\nCOPY --from={TOOLS} /bin/x /x\n")
    assert handed(plan) == f"FROM scratch\nCOPY --from={REG}/ns/tools@{D_TOOLS} /bin/x /x\n"
    cleanup(plan)


def test_from_scratch_asks_the_gate_nothing(world: World, tmp_path: Path) -> None:
    plan = build(world, tmp_path, "FROM scratch\nCOPY a /a\n")
    assert handed(plan) == "FROM scratch\nCOPY a /a\n"
    assert world.verifier.asked == [] and world.audit.entries == []
    cleanup(plan)


def test_a_hex_word_is_an_image_name_never_a_local_image_id(world: World,
                                                            tmp_path: Path) -> None:
    world.verifier.verdicts["docker.io/library/abc123"] = verdict(
        "abc123", covered=None, digest=None, action=Action.ACCEPT, config=None)
    plan = build(world, tmp_path, "FROM abc123\n")
    # allowed without a digest: pinned by name to what it resolves to (a base's ONBUILD
    # triggers are read), which no builder reads as an ID prefix
    assert handed(plan) == f"FROM docker.io/library/abc123@{INDEX}\n"
    assert not any(a.startswith("inspect abc123") for a in world.engine.asked)
    cleanup(plan)


def test_a_sha256_image_id_in_from_is_refused(world: World, tmp_path: Path) -> None:
    error = refused(world, tmp_path, f"FROM sha256:{'a' * 64}\n")
    assert error.exit_code == ExitCode.REFUSED and "image ID" in error.what


def test_warn_mode_pins_what_it_resolved_and_says_so(world: World, tmp_path: Path) -> None:
    world.mode = Mode.WARN
    plan = build(world, tmp_path, f"FROM {EVIL}\n")
    assert handed(plan) == f"FROM {REG}/ns/evil@{D_EVIL}\n"
    assert any("warning" in line and EVIL in line for line in world.lines)
    cleanup(plan)


def test_mode_off_hands_the_command_unchanged_and_reads_nothing(world: World,
                                                                tmp_path: Path) -> None:
    world.mode = Mode.OFF
    stdin = io.BytesIO(b"FROM evil\n")
    plan = plan_build(["build", "-"], gate=world.gate, client=FakeClient(), stdin=stdin,
                      environ=LEGACY_ENV)
    assert plan.commands == (("build", "-"),) and plan.workdir is None
    assert stdin.tell() == 0


def test_the_dockerfile_changed_after_the_scan_changes_nothing(world: World,
                                                              tmp_path: Path) -> None:
    plan = build(world, tmp_path, f"FROM {BASE}\n")
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {EVIL}\n")  # the swap
    assert handed(plan) == f"FROM {REG}/ns/base@{D_BASE}\n"
    cleanup(plan)


def test_a_fifo_dockerfile_is_never_read(world: World, tmp_path: Path) -> None:
    import os

    (tmp_path / "ctx").mkdir()
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match="not a regular file"):
        plan_build(["build", "-f", str(tmp_path / "fifo"), str(tmp_path / "ctx")],
                   gate=world.gate, client=FakeClient(), stdin=io.BytesIO(),
                   environ=LEGACY_ENV)


def test_the_lower_case_dockerfile_is_found_as_docker_finds_it(world: World,
                                                             tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "dockerfile").write_text(f"FROM {BASE}\n")
    plan = plan_build(["build", str(context)], gate=world.gate, client=FakeClient(),
                      stdin=io.BytesIO(), environ=LEGACY_ENV)
    assert handed(plan) == f"FROM {REG}/ns/base@{D_BASE}\n"
    cleanup(plan)


# --- stdin ------------------------------------------------------------------------------------


def test_dash_f_dash_reads_stdin_once_and_hands_docker_the_pinned_copy(
        world: World, tmp_path: Path) -> None:
    plan = build(world, tmp_path, "FROM scratch\n", "--file=-",
                 stdin=f"FROM {BASE}\n".encode())
    assert handed(plan) == f"FROM {REG}/ns/base@{D_BASE}\n"
    assert "-" not in plan.commands[0] and plan.stdin is None
    cleanup(plan)


def test_a_dockerfile_as_the_stdin_context_is_handed_back_pinned_on_stdin(
        world: World, tmp_path: Path) -> None:
    plan = build(world, tmp_path, "", "-t", "x", "-", stdin=f"FROM {BASE}\n".encode())
    assert plan.commands == (("build", "-t", "x", "-"),)
    assert plan.stdin is not None
    assert Path(plan.stdin).read_text() == f"FROM {REG}/ns/base@{D_BASE}\n"
    cleanup(plan)


def tar_bytes(files: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return out.getvalue()


@pytest.mark.parametrize("compress", [False, True], ids=["tar", "tar.gz"])
def test_a_tar_context_on_stdin_gets_its_dockerfile_pinned_and_nothing_else_changed(
        world: World, tmp_path: Path, compress: bool) -> None:
    files = {"run.sh": b"#!/bin/sh\necho hi\n", "Dockerfile": f"FROM {BASE}\n".encode()}
    data = tar_bytes(files)
    plan = build(world, tmp_path, "", "-", stdin=gzip.compress(data) if compress else data)
    assert plan.stdin is not None
    with tarfile.open(plan.stdin) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("Dockerfile").read() == (  # type: ignore[union-attr]
            f"FROM {REG}/ns/base@{D_BASE}\n".encode())
        assert tar.extractfile("run.sh").read() == files["run.sh"]  # type: ignore[union-attr]
        assert members["run.sh"].mode == 0o755 and members["Dockerfile"].mode == 0o755
    cleanup(plan)


def test_a_tar_context_with_two_dockerfiles_is_refused(world: World, tmp_path: Path) -> None:
    first = tar_bytes({"Dockerfile": f"FROM {BASE}\n".encode()})
    second = tar_bytes({"Dockerfile": f"FROM {EVIL}\n".encode()})
    twice = first[:512 * 2] + second  # two members named Dockerfile, one archive
    error = refused(world, tmp_path, "", "-", stdin=twice)
    assert error.exit_code == ExitCode.REFUSED and "more than once" in error.what


def test_a_tar_context_the_strict_reader_refuses_is_refused_and_names_why(
        world: World, tmp_path: Path) -> None:
    data = tar_bytes({"Dockerfile": f"FROM {BASE}\n".encode()}, symlink="link")
    error = refused(world, tmp_path, "", "-", stdin=data)
    assert error.exit_code == ExitCode.REFUSED and "symbolic link" in error.line()


def test_a_stdin_context_larger_than_the_limit_is_refused(world: World, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setattr("safedocker.gate.build_input.MAX_CONTEXT", 4096)
    error = refused(world, tmp_path, "", "-", stdin=b"#" * 5000)
    assert "larger than" in error.what


def test_a_gzip_bomb_on_stdin_stops_at_the_limit(world: World, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("safedocker.gate.build_input.MAX_CONTEXT", 1 << 20)
    bomb = gzip.compress(b"\x00" * (64 << 20))  # 64 MiB of zeros in ~64 KiB
    error = refused(world, tmp_path, "", "-", stdin=bomb)
    assert "larger than" in error.what


# --- what cannot be verified ------------------------------------------------------------------


def test_a_remote_context_is_refused_in_enforce_mode(world: World) -> None:
    with pytest.raises(Refused) as info:
        plan_build(["build", "https://example.com/repo.git"], gate=world.gate,
                   client=FakeClient(), stdin=io.BytesIO(), environ=LEGACY_ENV)
    assert "remote" in info.value.why and "local directory" in info.value.hint
    assert [e["outcome"] for e in world.audit.entries] == ["refused"]


def test_a_remote_context_passes_unchanged_in_warn_mode(world: World) -> None:
    world.mode = Mode.WARN
    argv = ["build", "git@github.com:o/r.git"]
    plan = plan_build(argv, gate=world.gate, client=FakeClient(), stdin=io.BytesIO(),
                      environ=LEGACY_ENV)
    assert plan.commands == (tuple(argv),)
    assert any("warning" in line for line in world.lines)


def test_warn_mode_hands_docker_the_stdin_it_read_when_the_scan_refuses(
        world: World, tmp_path: Path) -> None:
    world.mode = Mode.WARN
    data = b"# syntax=example.com/custom\nFROM x\n"
    plan = build(world, tmp_path, "", "-", stdin=data,
                 env={"DOCKER_BUILDKIT": "1"}, client=FakeClient(buildx=True))
    assert plan.commands == (("build", "-"),)
    assert plan.stdin is not None and Path(plan.stdin).read_bytes() == data
    cleanup(plan)


# --- ONBUILD triggers of verified bases ---------------------------------------------------------


def onbuild(world: World, *triggers: str) -> None:
    world.verifier.configs[BASE] = {"config": {"OnBuild": list(triggers)}}  # type: ignore[attr-defined]


def test_an_onbuild_copy_from_of_a_base_refuses_a_legacy_build(world: World,
                                                               tmp_path: Path) -> None:
    onbuild(world, f"COPY --from={TOOLS} /x /x")
    error = refused(world, tmp_path, f"FROM {BASE}\n")
    assert "ONBUILD" in error.what and TOOLS in error.what


def test_onbuild_triggers_without_images_build(world: World, tmp_path: Path) -> None:
    onbuild(world, "RUN make", "COPY . /src")
    cleanup(build(world, tmp_path, f"FROM {BASE}\n"))


def test_an_onbuild_copy_from_of_a_base_is_verified_and_pinned_for_buildx(
        world: World, tmp_path: Path) -> None:
    onbuild(world, f"COPY --from={EVIL} /x /x")
    error = refused(world, tmp_path, f"FROM {BASE}\n", command=("buildx", "build"), env={})
    assert EVIL in error.what and "ONBUILD" in error.what
    world.verifier.configs[BASE] = {"config": {"onbuild": [f"COPY --from={TOOLS} /x /x"]}}  # type: ignore[attr-defined]
    plan = build(world, tmp_path, f"FROM {BASE}\n", command=("buildx", "build"), env={})
    assert f"--build-context={REG}/ns/tools:v1=docker-image://{REG}/ns/tools@{D_TOOLS}" in (
        plan.commands[0])
    cleanup(plan)


def test_a_base_decided_from_the_cache_without_its_config_refuses_the_build(
        world: World, tmp_path: Path) -> None:
    # Offline, the verifier has no config it did not cache: its triggers are unknown.
    world.verifier.verdicts[BASE] = verdict(BASE, covered=D_BASE, digest=D_BASE, offline=True)
    world.engine.images[f"{REG}/ns/base@{D_BASE}"] = LocalImage(str(CONFIG))
    error = refused(world, tmp_path, f"FROM {BASE}\n", command=("buildx", "build"), env={})
    assert "ONBUILD" in error.what and BASE in error.what
    assert error.exit_code == ExitCode.REFUSED


ACCEPTED = f"{REG}/accepted/base:v1"


def accepted_base(world: World, *triggers: str) -> None:
    """ACCEPTED is allowed by policy without a digest; its config carries ``triggers``."""
    world.verifier.verdicts[ACCEPTED] = verdict(ACCEPTED, covered=None, digest=None,
                                                action=Action.ACCEPT, config=None)
    world.verifier.configs[ACCEPTED] = {"config": {"OnBuild": list(triggers)}}  # type: ignore[attr-defined]


def test_an_onbuild_copy_from_of_a_base_accepted_without_a_digest_refuses_a_legacy_build(
        world: World, tmp_path: Path) -> None:
    accepted_base(world, f"COPY --from={EVIL} /x /x")
    error = refused(world, tmp_path, f"FROM {ACCEPTED}\n")
    assert "ONBUILD" in error.what and EVIL in error.what


def test_an_onbuild_image_of_a_base_accepted_without_a_digest_is_verified_for_buildx(
        world: World, tmp_path: Path) -> None:
    accepted_base(world, f"COPY --from={EVIL} /x /x")
    error = refused(world, tmp_path, f"FROM {ACCEPTED}\n", command=("buildx", "build"), env={})
    assert EVIL in error.what and "ONBUILD" in error.what


def test_a_base_accepted_without_a_digest_is_built_from_what_was_read(
        world: World, tmp_path: Path) -> None:
    accepted_base(world, "RUN make")
    plan = build(world, tmp_path, f"FROM {ACCEPTED}\n")
    assert handed(plan) == f"FROM {REG}/accepted/base@{INDEX}\n"
    cleanup(plan)


def test_a_base_accepted_without_a_digest_that_cannot_be_read_refuses_the_build(
        world: World, tmp_path: Path) -> None:
    accepted_base(world)
    world.verifier.resolved[ACCEPTED] = RegistryUnavailable("cannot reach the registry")
    error = refused(world, tmp_path, f"FROM {ACCEPTED}\n")
    assert error.exit_code == ExitCode.REFUSED and "ONBUILD" in error.what


def test_of_several_bases_accepted_without_a_digest_the_first_unreadable_one_is_named(
        world: World, tmp_path: Path) -> None:
    others = [f"{REG}/accepted/other{n}:v1" for n in range(3)]
    for image in others:
        world.verifier.verdicts[image] = verdict(image, covered=None, digest=None,
                                                 action=Action.ACCEPT, config=None)
        world.verifier.resolved[image] = RegistryUnavailable(f"cannot reach {image}")
    accepted_base(world)
    error = refused(world, tmp_path, "".join(f"FROM {image}\n" for image in
                                             [ACCEPTED, *reversed(others)]))
    assert "other2" in error.what and "ONBUILD" in error.what
    assert sum(1 for asked, _ in world.verifier.asked if asked.startswith("resolve ")) == 4


PROXY = {"HTTP_PROXY": "http://proxy.corp:3128", "http_proxy": "http://proxy.corp:3128"}


def test_images_that_change_with_the_proxy_args_docker_adds_from_its_config_are_refused(
        world: World, tmp_path: Path) -> None:
    # buildx evaluates "base${HTTP_PROXY:+x}" with the config's proxy: REG/ns/basex, which
    # no named context pins; safe-docker, without it, would have verified REG/ns/base.
    text = f"ARG HTTP_PROXY\nFROM {REG}/ns/base${{HTTP_PROXY:+x}}:v1\n"
    error = refused(world, tmp_path, text, command=("buildx", "build"), env={},
                    client=FakeClient(proxies=(PROXY,)))
    assert error.exit_code == ExitCode.REFUSED and "proxy" in error.what


def test_images_that_change_with_source_date_epoch_from_the_environment_are_refused(
        world: World, tmp_path: Path) -> None:
    text = f"ARG SOURCE_DATE_EPOCH\nFROM {REG}/ns/base${{SOURCE_DATE_EPOCH:+x}}:v1\n"
    error = refused(world, tmp_path, text, command=("buildx", "build"),
                    env={"SOURCE_DATE_EPOCH": "0"})
    assert error.exit_code == ExitCode.REFUSED and "SOURCE_DATE_EPOCH" in error.what


def test_proxy_args_that_change_no_image_build(world: World, tmp_path: Path) -> None:
    plan = build(world, tmp_path, f"ARG HTTP_PROXY\nFROM {BASE}\nRUN echo $HTTP_PROXY\n",
                 command=("buildx", "build"), env={}, client=FakeClient(proxies=(PROXY,)))
    cleanup(plan)


# --- BuildKit through buildx: named contexts ----------------------------------------------------


def test_buildx_pins_every_image_with_a_named_context_and_keeps_the_dockerfile(
        world: World, tmp_path: Path) -> None:
    text = f"FROM {BASE} AS b\nCOPY --from={TOOLS} /x /x\n"
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile.dockerignore").write_text("secrets/\n")
    plan = build(world, tmp_path, text, "--load", env={"DOCKER_BUILDKIT": "1"},
                 client=FakeClient(buildx=True))
    command = plan.commands[0]
    assert f"--build-context={REG}/ns/base:v1=docker-image://{REG}/ns/base@{D_BASE}" in command
    assert f"--build-context={REG}/ns/tools:v1=docker-image://{REG}/ns/tools@{D_TOOLS}" in (
        command)
    assert handed(plan) == text
    dockerfile = next(t for t in command if t.startswith("--file=")).removeprefix("--file=")
    assert Path(dockerfile + ".dockerignore").read_text() == "secrets/\n"
    cleanup(plan)


def test_buildx_is_refused_when_its_builder_ignores_named_contexts(world: World,
                                                                   tmp_path: Path) -> None:
    error = refused(world, tmp_path, f"FROM {BASE}\n", env={},
                    client=FakeClient(buildx=True, contexts=False))
    assert "--build-context" in error.what


def test_buildx_refuses_a_build_policy_next_to_the_dockerfile(world: World,
                                                              tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile.rego").write_text("package x\n")
    error = refused(world, tmp_path, f"FROM {BASE}\n", command=("buildx", "build"), env={})
    assert "Dockerfile.rego" in error.what


def test_buildx_verifies_a_docker_image_build_context_and_the_sbom_generator(
        world: World, tmp_path: Path) -> None:
    error = refused(world, tmp_path, "FROM base\n", "--build-context",
                    f"base=docker-image://{EVIL}", command=("buildx", "build"), env={})
    assert EVIL in error.what and "--build-context base" in error.what
    plan = build(world, tmp_path, "FROM scratch\n", "--attest",
                 f"type=sbom,generator={TOOLS}", command=("buildx", "build"), env={})
    assert f"--attest=type=sbom,generator={REG}/ns/tools@{D_TOOLS}" in plan.commands[0]
    cleanup(plan)


def test_buildx_pins_the_syntax_frontend_with_a_build_arg(world: World,
                                                          tmp_path: Path) -> None:
    frontend = "docker.io/docker/dockerfile:1.7"
    world.verifier.verdicts[frontend] = verdict(frontend, covered=D_TOOLS, digest=D_TOOLS)
    plan = build(world, tmp_path, f"# syntax={frontend}\nFROM {BASE}\n",
                 command=("buildx", "build"), env={})
    assert f"--build-arg=BUILDKIT_SYNTAX=docker.io/docker/dockerfile@{D_TOOLS}" in (
        plan.commands[0])
    cleanup(plan)


# --- docker CLI 20.10's built-in BuildKit: the rewrite ---------------------------------------


def test_the_builtin_buildkit_client_gets_the_rewrite_and_a_pinned_frontend(
        world: World, tmp_path: Path) -> None:
    frontend = "docker.io/docker/dockerfile:1.4"
    world.verifier.verdicts[frontend] = verdict(frontend, covered=D_TOOLS, digest=D_TOOLS)
    plan = build(world, tmp_path, f"# syntax={frontend}\nFROM {BASE}\n", "--secret", "id=a",
                 env={"DOCKER_BUILDKIT": "1"}, client=FakeClient(version=(20, 10)))
    command = plan.commands[0]
    assert f"--build-arg=BUILDKIT_SYNTAX=docker.io/docker/dockerfile@{D_TOOLS}" in command
    assert not any(t.startswith("--build-context") for t in command)
    assert handed(plan) == f"# syntax={frontend}\nFROM {REG}/ns/base@{D_BASE}\n"
    cleanup(plan)


# --- which builder -------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "env", "client", "kind"), [
    (("build",), {}, FakeClient(), Kind.LEGACY),  # CLI 28 without buildx
    (("build",), {}, FakeClient(buildx=True), Kind.BUILDX),
    (("build",), {"DOCKER_BUILDKIT": "0"}, FakeClient(buildx=True), Kind.LEGACY),
    (("image", "build"), {}, FakeClient(buildx=True), Kind.BUILDX),
    (("buildx", "build"), {"DOCKER_BUILDKIT": "0"}, FakeClient(), Kind.BUILDX),
    (("build",), {"DOCKER_BUILDKIT": "1"}, FakeClient(version=(20, 10)), Kind.BUILTIN),
    (("build",), {"DOCKER_BUILDKIT": "0"}, FakeClient(version=(20, 10)), Kind.LEGACY),
    (("build",), {"DOCKER_BUILDKIT": "1"}, FakeClient(version=(20, 10), alias="buildx"),
     Kind.BUILDX),
])
def test_the_builder_is_the_one_docker_would_use(command: tuple[str, ...],
                                                 env: dict[str, str], client: FakeClient,
                                                 kind: Kind) -> None:
    assert choose_builder(command, env, client) is kind


def test_buildkit_enabled_without_buildx_is_docker_s_own_usage_error() -> None:
    with pytest.raises(UsageError, match="buildx component is missing"):
        choose_builder(("build",), {"DOCKER_BUILDKIT": "1"}, FakeClient())


def test_an_old_cli_without_docker_buildkit_is_refused_with_a_hint(world: World,
                                                                   tmp_path: Path) -> None:
    with pytest.raises(Refused) as info:
        choose_builder(("build",), {}, FakeClient(version=(20, 10)))
    assert "DOCKER_BUILDKIT=0" in info.value.hint


def test_the_docker_config_alias_is_read_from_the_users_config(tmp_path: Path) -> None:
    from safedocker.gate.build_client import DockerClient

    (tmp_path / "config.json").write_text(json.dumps({"aliases": {"builder": "buildx"}}))
    assert DockerClient("docker", docker_config=str(tmp_path)).builder_alias() == "buildx"
    assert DockerClient("docker", docker_config=str(tmp_path / "none")).builder_alias() is None


def test_the_proxy_build_args_are_read_from_the_docker_config_as_the_cli_adds_them(
        tmp_path: Path) -> None:
    from safedocker.gate.build_client import DockerClient

    (tmp_path / "config.json").write_text(json.dumps({"Proxies": {
        "default": {"httpProxy": "http://p:3128", "noProxy": ""},
        "unix:///var/run/docker.sock": {"HTTPSPROXY": "http://q:3128"}}}))
    client = DockerClient("docker", docker_config=str(tmp_path), environ={})
    assert client.proxy_build_args() == (
        {"HTTP_PROXY": "http://p:3128", "http_proxy": "http://p:3128"},
        {"HTTPS_PROXY": "http://q:3128", "https_proxy": "http://q:3128"})


def test_the_builder_alias_is_read_as_docker_reads_config_json(tmp_path: Path) -> None:
    from safedocker.gate.build_client import DockerClient

    # Go matches "Aliases" to the aliases field: docker forwards builds to "other".
    (tmp_path / "config.json").write_text('{"Aliases": {"builder": "other"}}')
    client = DockerClient("docker", docker_config=str(tmp_path), environ={})
    assert client.builder_alias() == "other"
    # Go keeps the last of a repeated member; a reader keeping the first would not see it.
    (tmp_path / "config.json").write_text(
        '{"aliases": {"builder": "buildx"}, "aliases": {"builder": "other"}}')
    with pytest.raises(Refused, match="as docker does"):
        client.builder_alias()
    (tmp_path / "config.json").write_text("{not json")
    assert client.builder_alias() is None  # docker warns and goes on without a config


@pytest.mark.parametrize("arg", ["TARGETARCH", "BUILDARCH", "BUILDPLATFORM"])
def test_images_named_by_platform_args_are_refused_on_a_builder_whose_platform_is_unknown(
        world: World, tmp_path: Path, arg: str) -> None:
    # `buildx create --platform linux/arm64` (or a remote builder): BuildKit expands
    # TARGETARCH to arm64 and pulls REG/ns/app-arm64, which no named context pins, while
    # the daemon's amd64 would have had REG/ns/app-amd64 verified.
    text = f"ARG {arg}\nFROM {REG}/ns/app-${{{arg}}}\n"
    error = refused(world, tmp_path, text, command=("buildx", "build"), env={},
                    client=FakeClient(native=False))
    assert error.exit_code == ExitCode.REFUSED and arg in error.line(), error.line()


def test_a_builder_of_another_driver_builds_what_names_no_platform(
        world: World, tmp_path: Path) -> None:
    plan = build(world, tmp_path, f"FROM {BASE}\n", command=("buildx", "build"), env={},
                 client=FakeClient(native=False))
    cleanup(plan)


def test_the_builder_driver_is_read_from_buildx_inspect() -> None:
    from safedocker.gate.build_client import _DRIVER_LINE

    found = _DRIVER_LINE.search("Name:   arm\nDriver: docker-container\nNodes:\n")
    assert found is not None and found[1] == "docker-container"
