"""`safe-docker compose`: argument handling, the files compose reads, the override file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from safedocker.errors import ConfigError, Refused, UsageError
from safedocker.gate import compose
from safedocker.gate.compose import (
    Compose,
    ComposeArgs,
    ServicePin,
    compose_argv,
    default_files,
    make_plan,
    override_document,
    parse_args,
    parse_config_output,
    write_override,
)
from safedocker.gate.handoff import Plan


def test_global_options_are_split_from_the_subcommand() -> None:
    args = parse_args(["-f", "a.yml", "--file=b.yml", "-fc.yml", "-p", "proj",
                       "--profile", "gpu", "--env-file", ".env.test", "--ansi", "never",
                       "--dry-run", "up", "-d", "--build", "web"])
    assert args.files == ["a.yml", "b.yml", "c.yml"]
    assert args.values("-p", "--project-name") == ["proj"]
    assert args.subcommand == "up"
    assert args.rest == ("-d", "--build", "web")
    assert not args.help
    # Only the options that change what `config` resolves go to the config call.
    assert args.global_argv(only=compose.CONFIG_OPTIONS, drop_files=True) == [
        "-p", "proj", "--profile", "gpu", "--env-file", ".env.test"]


@pytest.mark.parametrize("argv", [["--help"], ["up", "--help"], ["-h"], ["run", "-h", "x"]])
def test_help_anywhere_is_noticed(argv: list[str]) -> None:
    assert parse_args(argv).help


def test_a_global_option_without_its_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_args(["-f"])


def test_no_subcommand() -> None:
    args = parse_args(["--ansi", "never"])
    assert args.subcommand is None and args.rest == ()


def test_the_override_comes_after_every_user_file() -> None:
    args = parse_args(["-p", "proj", "-f", "a.yml", "up", "-d"])
    argv = compose_argv(args, ["a.yml"], Path("/state/compose/x.yml"))
    assert argv == ["-f", "a.yml", "-f", "/state/compose/x.yml", "-p", "proj", "up", "-d"]


def test_default_files_are_named_explicitly(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "docker-compose.override.yml").write_text("services: {}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    # compose.yaml wins over docker-compose.yml; parents are searched; the override is kept.
    assert default_files(sub, {}) == [str(tmp_path / "compose.yaml"),
                                      str(tmp_path / "docker-compose.override.yml")]


def test_compose_file_variable_is_honoured(tmp_path: Path) -> None:
    env = {"COMPOSE_FILE": "a.yml:b.yml"}
    assert default_files(tmp_path, env) == ["a.yml", "b.yml"]
    env = {"COMPOSE_FILE": "a.yml;b.yml", "COMPOSE_PATH_SEPARATOR": ";"}
    assert default_files(tmp_path, env) == ["a.yml", "b.yml"]


def test_no_compose_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        default_files(tmp_path / "nowhere", {})


def test_override_pins_images_and_reserves_gpus() -> None:
    pins = [
        ServicePin("web", "127.0.0.1:5000/demo/web:v1",
                   pinned="127.0.0.1:5000/demo/web@sha256:" + "a" * 64),
        ServicePin("train", "nvcr.io/nvidia/pytorch:24.01",
                   pinned="nvcr.io/nvidia/pytorch@sha256:" + "b" * 64, gpu_all=True),
        ServicePin("pick", "x", pinned="docker.io/library/x@sha256:" + "c" * 64,
                   gpu_devices=("0", "GPU-1")),
        ServicePin("warned", "y"),  # accepted without a digest: left alone
    ]
    assert override_document(pins) == {"services": {
        "web": {"image": "127.0.0.1:5000/demo/web@sha256:" + "a" * 64},
        "train": {"image": "nvcr.io/nvidia/pytorch@sha256:" + "b" * 64,
                  "deploy": {"resources": {"reservations": {"devices": [
                      {"driver": "nvidia", "capabilities": ["gpu"], "count": "all"}]}}}},
        "pick": {"image": "docker.io/library/x@sha256:" + "c" * 64,
                 "deploy": {"resources": {"reservations": {"devices": [
                     {"driver": "nvidia", "capabilities": ["gpu"],
                      "device_ids": ["0", "GPU-1"]}]}}}},
    }}


def test_override_file_is_content_addressed_and_yaml(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    document = {"services": {"web": {"image": "r/web@sha256:" + "a" * 64}}}
    path = write_override(tmp_path, document)
    assert path.parent == tmp_path / "compose" and path.suffix == ".yml"
    assert yaml.safe_load(path.read_text()) == document  # compose reads it as YAML
    assert write_override(tmp_path, document) == path  # same content, same file


def test_config_output_json_and_yaml() -> None:
    project = {"name": "p", "services": {"a": {"image": "x"}}}
    assert parse_config_output(json.dumps(project).encode(), json_output=True) == project
    pytest.importorskip("yaml")
    text = b"services:\n  a:\n    image: x\nversion: '3.9'\n"
    assert parse_config_output(text, json_output=False)["services"] == {"a": {"image": "x"}}
    with pytest.raises(ConfigError):
        parse_config_output(b"[1, 2]", json_output=True)
    with pytest.raises(ConfigError):
        parse_config_output(b"{", json_output=True)


def test_plugin_or_standalone() -> None:
    plugin = Compose(None, "2.27.0")
    assert plugin.json_config
    assert make_plan(plugin, ["ps"]) == Plan(commands=(("compose", "ps"),))
    standalone = Compose("/usr/bin/docker-compose", "1.29.2")
    assert not standalone.json_config
    assert standalone.argv("/usr/bin/docker", ["config"]) == ["/usr/bin/docker-compose", "config"]
    if "binary" in getattr(Plan, "__dataclass_fields__", {}):
        plan = make_plan(standalone, ["ps"])
        assert plan.commands == (("ps",),)
        assert getattr(plan, "binary", None) == "/usr/bin/docker-compose"
    else:  # until handoff.Plan can name another binary: a clear refusal, never docker
        from safedocker.errors import DockerNotFound

        with pytest.raises(DockerNotFound, match="standalone docker-compose"):
            make_plan(standalone, ["ps"])


def _fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, project: dict[str, Any],
          mode: str = "enforce") -> Path:
    monkeypatch.setattr(compose, "find_compose", lambda docker: Compose(None, "2.27.0"))
    monkeypatch.setattr("safedocker._docker.binary.real_docker", lambda: "/usr/bin/docker")
    monkeypatch.setattr(compose, "load_project", lambda *a: project)
    for name in ("CONFIG", "CACHE", "STATE", "SYSTEM_CONFIG"):
        monkeypatch.setenv(f"SAFE_DOCKER_{name}_DIR", str(tmp_path / name.lower()))
    monkeypatch.setenv("SAFE_DOCKER_MODE", mode)
    monkeypatch.delenv("COMPOSE_FILE", raising=False)
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_other_subcommands_pass_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake(monkeypatch, tmp_path, {"services": {}})
    assert compose.plan_compose(["-p", "x", "ps", "-a"]) == Plan(
        commands=(("compose", "-p", "x", "ps", "-a"),))


def test_build_only_service_is_refused_in_enforce_mode(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    _fake(monkeypatch, tmp_path, {"name": "proj", "services": {"app": {"build": {"context": "."}}}})
    with pytest.raises(Refused) as raised:
        compose.plan_compose(["up", "-d"])
    line = raised.value.line()
    assert "locally built image proj-app" in line and "service 'app'" in line
    assert "policy allow" in line


def test_build_only_service_is_allowed_when_policy_accepts_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _fake(monkeypatch, tmp_path, {"name": "proj",
                                         "services": {"app": {"build": {"context": "."}}}})
    (root / "config").mkdir()
    (root / "config" / "config.toml").write_text(
        '[[policy]]\nscope = "proj-app"\naction = "accept"\n')
    # Nothing to pin: compose runs as the user asked.
    assert compose.plan_compose(["up", "-d"]) == Plan(commands=(("compose", "up", "-d"),))


def test_compose_file_from_stdin_is_refused(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    _fake(monkeypatch, tmp_path, {"services": {}})
    with pytest.raises(UsageError, match="standard input"):
        compose.plan_compose(["-f", "-", "up"])


def test_mode_off_passes_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake(monkeypatch, tmp_path, {"services": {"app": {"build": "."}}}, mode="off")
    assert compose.plan_compose(["up"]) == Plan(commands=(("compose", "up"),))


def test_run_of_a_service_outside_the_project_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    _fake(monkeypatch, tmp_path, {"services": {}})
    with pytest.raises(Refused, match="not in the resolved project"):
        compose.plan_compose(["run", "--rm", "ghost"])


@pytest.mark.parametrize(("rest", "service"), [
    (["--rm", "web", "sh"], "web"), (["-e", "A=b", "--name", "n", "web"], "web"),
    (["-eA=b", "web"], "web"), (["--", "web"], "web"), (["--rm"], None)])
def test_run_service_is_found_after_options(rest: list[str], service: str | None) -> None:
    assert compose.run_service(rest) == service


def test_compose_args_is_a_value() -> None:
    args = ComposeArgs((("-f", "a"),), "up", ())
    assert args.global_argv() == ["-f", "a"]


# --- GPU reservations ----------------------------------------------------------------------


def _host() -> Any:
    from safedocker.gpu.detect import GpuDevice, HostGpu

    device = GpuDevice(index=0, name="NVIDIA H100", uuid="GPU-0", memory_total=None,
                       brand="Unknown", brand_id=None, compute_capability=(9, 0),
                       mig_current=None, mig_pending=None)
    return HostGpu(present=True, driver_version="550.54.15", cuda_version=(12, 4),
                   devices=(device,))


class _Verifier:
    def __init__(self, env: list[str]) -> None:
        self.env = env

    def image_config(self, verdict: object) -> dict[str, Any]:
        return {"config": {"Env": self.env}}


class _Verdict:
    def __init__(self, gpu: str) -> None:
        from safedocker.policy.model import GpuPolicy

        self.decision = type("D", (), {"gpu": GpuPolicy(gpu)})()


@pytest.mark.parametrize(("service", "env", "gpu", "expected"), [
    ({}, ["CUDA_VERSION=12.2", "NVIDIA_REQUIRE_CUDA=cuda>=12.0"], "auto", True),
    ({}, ["PATH=/bin"], "auto", False),  # not a CUDA image
    ({}, ["PATH=/bin"], "always", True),
    ({}, ["CUDA_VERSION=12.2"], "never", False),
    # The service already reserves GPUs itself: nothing added.
    ({"deploy": {"resources": {"reservations": {"devices": [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]}}}},
     ["CUDA_VERSION=12.2"], "auto", False),
])
def test_gpu_reservation_follows_policy_and_image(
        monkeypatch: pytest.MonkeyPatch, service: dict[str, Any], env: list[str], gpu: str,
        expected: bool) -> None:
    monkeypatch.setattr("safedocker.gpu.detect.detect_host", _host)
    monkeypatch.delenv("SAFE_DOCKER_GPU", raising=False)
    monkeypatch.delenv("SAFE_DOCKER_GPUS", raising=False)
    pin = ServicePin("train", "x", pinned="x@sha256:" + "a" * 64)
    compose._Gpu().pin(pin, service, _Verdict(gpu), _Verifier(env))  # type: ignore[arg-type]
    assert pin.gpu_all is expected


def test_gpu_requirement_the_host_cannot_meet_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from safedocker.errors import GpuRequirementUnmet

    monkeypatch.setattr("safedocker.gpu.detect.detect_host", _host)
    monkeypatch.delenv("SAFE_DOCKER_GPU", raising=False)
    pin = ServicePin("train", "x")
    with pytest.raises(GpuRequirementUnmet):
        verifier = _Verifier(["CUDA_VERSION=13.0", "NVIDIA_REQUIRE_CUDA=cuda>=13.0"])
        compose._Gpu().pin(pin, {}, _Verdict("auto"), verifier)  # type: ignore[arg-type]


def test_docker_global_flags_before_compose_become_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from safedocker.errors import UsageError
    from safedocker.gate.compose import hoist_docker_globals

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    rest = hoist_docker_globals(["-H", "unix:///x.sock", "-l", "error", "--context=prod",
                                 "compose", "up", "-d"])
    assert rest == ["compose", "up", "-d"]
    assert os.environ["DOCKER_HOST"] == "unix:///x.sock"
    assert os.environ["DOCKER_CONTEXT"] == "prod"
    with pytest.raises(UsageError, match="--tlsverify"):
        hoist_docker_globals(["--tlsverify", "compose", "up"])


def test_every_service_goes_through_the_gate_and_the_override_pins_its_target(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.unit.gate.fakes import CHILD, REG, World, verdict

    app, db = f"{REG}/ns/app:v1", f"{REG}/ns/db:v1"
    root = _fake(monkeypatch, tmp_path, {"services": {
        "app": {"image": app, "platform": "linux/arm64"}, "db": {"image": db}}})
    world = World()
    world.verifier.verdicts[app] = verdict(app, covered=CHILD)
    world.verifier.verdicts[db] = verdict(db)
    plan = compose.plan_compose(["up", "-d"], gate=world.gate)
    override = Path(plan.commands[0][plan.commands[0].index("-f", 2) + 1])
    assert override.is_relative_to(root)
    images = {name: entry["image"] for name, entry in
              json.loads(override.read_text())["services"].items()}
    assert images == {"app": f"{REG}/ns/app@{CHILD}",
                      "db": world.gate.admit(_request(db)).target}
    assert [a for a, _ in world.verifier.asked][:2] == [app, db]
    assert [str(p.wanted) for _, p in world.verifier.asked[:1] if p] == ["linux/arm64"]
    assert [e["outcome"] for e in world.audit.entries][:2] == ["accepted", "accepted"]


def test_one_refused_service_refuses_the_command_before_anything_is_written(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.unit.gate.fakes import REG, World, verdict

    app, evil = f"{REG}/ns/app:v1", f"{REG}/ns/evil:v1"
    root = _fake(monkeypatch, tmp_path, {"services": {"a": {"image": app},
                                                      "b": {"image": evil}}})
    world = World()
    world.verifier.verdicts[app] = verdict(app)
    world.verifier.verdicts[evil] = verdict(evil, accepted=False, reasons=("no signature",))
    with pytest.raises(Refused, match="service 'b'"):
        compose.plan_compose(["up"], gate=world.gate)
    assert not (root / "state" / "compose").exists()


def _request(text: str) -> Any:
    from safedocker.gate.decide import ImageRequest, Origin

    return ImageRequest.parse(text, command=("compose",), origin=Origin.COMPOSE)
