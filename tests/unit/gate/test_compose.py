"""`safe-docker compose`: the files compose reads, the model taken once, the one resolved
file compose runs (pinned, active services only), and what reaches compose."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from safedocker.errors import Refused, SafeDockerError, UsageError
from safedocker.gate import compose
from safedocker.gate.compose import (
    Compose,
    ServicePin,
    active_services,
    default_files,
    make_plan,
    resolved_model,
)
from safedocker.gate.compose_argv import ComposeArgvError, Flavour, parse_compose_argv
from safedocker.gate.handoff import Plan
from safedocker.policy.model import Mode
from tests.unit.gate.fakes import CHILD, REG, World, verdict

V1 = Compose("/usr/bin/docker-compose", "1.29.2")


def _cmd(*args: str, flavour: Flavour = Flavour.V2) -> Any:
    return parse_compose_argv(list(args), flavour)


def test_default_files_follow_each_flavours_order(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "docker-compose.override.yml").write_text("services: {}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    # v2: compose.yaml wins; 1.29: docker-compose.yml wins; parents are searched.
    assert default_files(sub, Flavour.V2) == [str(tmp_path / "compose.yaml"),
                                              str(tmp_path / "docker-compose.override.yml")]
    assert default_files(sub, Flavour.V1) == [str(tmp_path / "docker-compose.yml"),
                                              str(tmp_path / "docker-compose.override.yml")]


def test_no_compose_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        default_files(tmp_path / "nowhere", Flavour.V2)


def test_plugin_or_standalone() -> None:
    plugin = Compose(None, "2.27.0")
    assert plugin.json_config and plugin.flavour is Flavour.V2
    assert make_plan(plugin, ["ps"]) == Plan(commands=(("compose", "ps"),))
    assert not V1.json_config and V1.flavour is Flavour.V1
    assert V1.argv("/usr/bin/docker", ["config"]) == ["/usr/bin/docker-compose", "config"]
    plan = make_plan(V1, ["ps"])
    assert plan.commands == (("ps",),) and plan.binary == "/usr/bin/docker-compose"


# --- which services compose acts on -----------------------------------------------------------

MODEL: dict[str, Any] = {"services": {
    "web": {"image": "w", "depends_on": {"db": {"condition": "service_started"}}},
    "db": {"image": "d", "profiles": ["data"]},
    "debug": {"image": "x", "profiles": ["debug"], "network_mode": "service:web"},
    "tool": {"image": "t", "profiles": ["tools"], "volumes_from": ["side:ro"]},
    "side": {"image": "s", "profiles": ["never"]},
}}


def test_active_services_are_default_ones_enabled_profiles_and_what_they_need() -> None:
    assert active_services(MODEL, _cmd("up"), frozenset()) == ["db", "web"]
    assert active_services(MODEL, _cmd("up"), frozenset({"debug"})) == ["db", "debug", "web"]
    assert active_services(MODEL, _cmd("up"), frozenset({"*"})) == sorted(MODEL["services"])


def test_run_of_a_service_in_an_inactive_profile_verifies_it_and_its_needs() -> None:
    # R1: compose enables the profile of a service named on the command line.
    cmd = _cmd("run", "-T", "tool", "sh")
    assert active_services(MODEL, cmd, frozenset()) == ["db", "side", "tool", "web"]


def test_a_named_service_the_model_lacks_is_refused() -> None:
    with pytest.raises(Refused, match="not in the resolved project"):
        active_services(MODEL, _cmd("run", "--rm", "ghost"), frozenset())


def test_run_te_good_evil_names_the_service_good_in_v2() -> None:
    # pflag reads -Te as -T -e with the value `good`: the service is `evil`.
    cmd = _cmd("run", "-Te", "good", "evil")
    assert cmd.services == ("evil",)
    assert active_services({"services": {"evil": {"image": "e"}, "good": {"image": "g"}}},
                           cmd, frozenset()) == ["evil", "good"]


def test_resolved_model_keeps_only_active_services_pinned_without_profiles() -> None:
    pins = [ServicePin("web", "w", pinned=f"{REG}/w@{CHILD}", gpu_all=True),
            ServicePin("db", "d", pinned=f"{REG}/d@{CHILD}", gpu_devices=("0", "GPU-1"))]
    out = resolved_model({**MODEL, "name": "p", "networks": {"n": {}}}, ["db", "web"], pins)
    assert out["name"] == "p" and out["networks"] == {"n": {}}
    assert sorted(out["services"]) == ["db", "web"]
    assert "profiles" not in out["services"]["db"]
    assert out["services"]["web"]["image"] == f"{REG}/w@{CHILD}"
    assert out["services"]["web"]["depends_on"] == {"db": {"condition": "service_started"}}
    assert out["services"]["web"]["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "capabilities": ["gpu"], "count": "all"}]
    assert out["services"]["db"]["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "capabilities": ["gpu"], "device_ids": ["0", "GPU-1"]}]
    assert MODEL["services"]["db"]["profiles"] == ["data"]  # the model itself is unchanged


# --- the whole plan, with a compose that records what it was asked -------------------------

FAKE = """#!{python}
import json, os, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if "config" in sys.argv:
    sys.stdout.write(open({model!r}).read())
"""


class Fake:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 model: dict[str, Any], *, flavour: Flavour = Flavour.V1,
                 mode: str = "enforce") -> None:
        self.log = tmp_path / "argv.log"
        self.model = tmp_path / "model.out"
        self.set_model(model, flavour)
        script = tmp_path / "fake-compose"
        script.write_text(FAKE.format(python=sys.executable, log=str(self.log),
                                      model=str(self.model)))
        script.chmod(0o755)
        found = Compose(str(script), "1.29.2") if flavour is Flavour.V1 else Compose(None, "2.27")
        monkeypatch.setattr(compose, "find_compose", lambda docker: found)
        monkeypatch.setattr("safedocker._docker.binary.real_docker", lambda: str(script))
        self.containers = False
        monkeypatch.setattr(compose, "all_have_containers", lambda *a: self.containers)
        for name in ("CONFIG", "CACHE", "STATE", "SYSTEM_CONFIG"):
            monkeypatch.setenv(f"SAFE_DOCKER_{name}_DIR", str(tmp_path / name.lower()))
        monkeypatch.setenv("SAFE_DOCKER_MODE", mode)
        for name in ("COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME",
                     "COMPOSE_ENV_FILES"):
            monkeypatch.delenv(name, raising=False)
        self.project = tmp_path / "proj"
        self.project.mkdir()
        (self.project / "docker-compose.yml").write_text("services: {}\n")
        (self.project / "compose.yaml").write_text("services: {}\n")
        monkeypatch.chdir(self.project)
        self.world = World()
        self.state = tmp_path / "state"

    def set_model(self, model: dict[str, Any], flavour: Flavour = Flavour.V1) -> None:
        text = json.dumps(model)  # JSON is YAML for the 1.x reader
        self.model.write_text(text)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def accept(self, *images: str) -> None:
        for image in images:
            self.world.verifier.verdicts[image] = verdict(image)

    def plan(self, *args: str) -> Plan:
        return compose.plan_compose(list(args), gate=self.world.gate)


def _resolved(plan: Plan) -> tuple[list[str], dict[str, Any]]:
    argv = list(plan.commands[-1])
    files = [a.removeprefix("--file=") for a in argv if a.startswith("--file=")]
    assert len(files) == 1, argv
    assert plan.workdir is not None and files[0].startswith(plan.workdir)
    yaml = pytest.importorskip("yaml")
    return argv, yaml.safe_load(Path(files[0]).read_text())


def test_up_runs_only_our_resolved_file_in_a_private_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = f"{REG}/ns/app:v1"
    fake = Fake(tmp_path, monkeypatch, {"services": {"app": {"image": app}}, "version": "3.9"})
    fake.accept(app)
    plan = fake.plan("--project-name", "demo", "up", "-d")
    argv, document = _resolved(plan)
    assert document["services"]["app"]["image"].startswith(f"{REG}/ns/app@sha256:")
    workdir = Path(str(plan.workdir))
    assert workdir.parent == fake.state / "compose"
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    assert stat.S_IMODE((workdir / "compose.yml").stat().st_mode) == 0o600
    # Only our file, our env file (an empty one: no .env), the directory, the name.
    env_file = workdir / "env-0"
    assert env_file.read_bytes() == b""
    assert argv == [f"--file={workdir / 'compose.yml'}", f"--project-directory={fake.project}",
                    f"--env-file={env_file}", "--project-name=demo", "up", "--detach"]
    # config read the files compose would have found itself, once.
    [config] = fake.calls()
    assert config == [f"--file={fake.project / 'docker-compose.yml'}", f"--env-file={env_file}",
                      f"--project-directory={fake.project}", "--project-name=demo", "config"]


def test_v2_resolves_every_profile_as_json(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    app = f"{REG}/ns/app:v1"
    fake = Fake(tmp_path, monkeypatch, {"name": "p", "services": {"app": {"image": app}}},
                flavour=Flavour.V2)
    fake.accept(app)
    plan = fake.plan("--profile", "x", "up")
    [config] = fake.calls()
    assert config[0] == "compose" and config[-3:] == ["--profile=*", "config", "--format=json"]
    assert "--profile=x" in config
    argv = list(plan.commands[-1])
    assert argv[0] == "compose" and "--project-name=p" in argv and argv[-1] == "up"


def test_the_env_file_is_copied_once_and_read_by_both(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app = f"{REG}/ns/app:v1"
    fake = Fake(tmp_path, monkeypatch, {"services": {"app": {"image": app}}})
    fake.accept(app)
    (fake.project / ".env").write_text("TAG=v1\nCOMPOSE_PROJECT_NAME=Fancy.Name\n")
    plan = fake.plan("up")
    argv, _ = _resolved(plan)
    copy = Path(str(plan.workdir)) / "env-0"
    assert copy.read_text() == "TAG=v1\nCOMPOSE_PROJECT_NAME=Fancy.Name\n"
    assert f"--env-file={copy}" in fake.calls()[0] and f"--env-file={copy}" in argv
    assert "--project-name=fancyname" in argv


def test_a_fifo_env_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path, monkeypatch, {"services": {}})
    os.mkfifo(fake.project / "evil.env")
    with pytest.raises(SafeDockerError, match="not a regular file"):
        fake.plan("--env-file", "evil.env", "up")
    assert fake.calls() == []


def test_an_unknown_option_is_refused_in_enforce_and_passed_with_a_warning_in_warn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = Fake(tmp_path, monkeypatch, {"services": {}})
    with pytest.raises(ComposeArgvError):
        fake.plan("--fi", "evil.yml", "up")
    assert fake.calls() == []
    monkeypatch.setenv("SAFE_DOCKER_MODE", "warn")
    fake.world.mode = Mode.WARN
    plan = fake.plan("--fi", "evil.yml", "up")
    assert plan.commands == (("--fi", "evil.yml", "up"),)
    [line] = fake.world.lines
    assert "'--fi'" in line


def test_pass_subcommands_get_the_canonical_spelling(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path, monkeypatch, {"services": {}})
    assert fake.plan("-p", "x", "ps", "-a").commands == (("--project-name=x", "ps", "-a"),)
    assert fake.calls() == []


def test_mode_off_passes_the_users_words(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path, monkeypatch, {"services": {}}, mode="off")
    assert fake.plan("--fi", "x", "up").commands == (("--fi", "x", "up"),)


def test_build_sections_are_refused_unless_compose_is_told_not_to_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = f"{REG}/ns/app:v1"
    fake = Fake(tmp_path, monkeypatch, {"services": {
        "app": {"image": app, "build": {"context": str(tmp_path)}}}})
    fake.accept(app)
    with pytest.raises(Refused, match="refused compose build of") as raised:
        fake.plan("up")
    assert "docker build -t NAME" in raised.value.line()
    _, document = _resolved(fake.plan("up", "--no-build"))
    assert document["services"]["app"]["image"].startswith(f"{REG}/ns/app@sha256:")


def test_build_only_service_is_accepted_only_when_policy_accepts_its_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path, monkeypatch, {"services": {"app": {"build": {"context": "."}}}})
    with pytest.raises(Refused, match="locally built image proj_app"):
        fake.plan("up", "--no-build")


def test_scale_is_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evil = f"{REG}/ns/evil:v1"
    fake = Fake(tmp_path, monkeypatch, {"services": {"web": {"image": evil}}})
    fake.world.verifier.verdicts[evil] = verdict(evil, accepted=False, reasons=("unsigned",))
    with pytest.raises(Refused, match="service 'web'"):
        fake.plan("scale", "web=3")
    assert len(fake.calls()) == 1  # config only


def test_start_verifies_when_a_service_has_no_container(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evil = f"{REG}/ns/evil:v1"
    fake = Fake(tmp_path, monkeypatch, {"services": {"web": {"image": evil}}})
    fake.world.verifier.verdicts[evil] = verdict(evil, accepted=False, reasons=("unsigned",))
    with pytest.raises(Refused, match="service 'web'"):
        fake.plan("start", "web")
    fake.containers = True  # every target has its container: nothing new is started
    argv, document = _resolved(fake.plan("start", "web"))
    assert argv[-2:] == ["start", "web"] and document["services"]["web"]["image"] == evil


def test_one_refused_service_refuses_the_command_and_leaves_no_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, evil = f"{REG}/ns/app:v1", f"{REG}/ns/evil:v1"
    fake = Fake(tmp_path, monkeypatch, {"services": {"a": {"image": app},
                                                     "b": {"image": evil}}})
    fake.accept(app)
    fake.world.verifier.verdicts[evil] = verdict(evil, accepted=False, reasons=("unsigned",))
    with pytest.raises(Refused, match="service 'b'"):
        fake.plan("up")
    assert list((fake.state / "compose").iterdir()) == []


def test_every_service_goes_through_the_gate_with_its_platform(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, db = f"{REG}/ns/app:v1", f"{REG}/ns/db:v1"
    fake = Fake(tmp_path, monkeypatch, {"services": {
        "app": {"image": app, "platform": "linux/arm64"}, "db": {"image": db}}})
    fake.world.verifier.verdicts[app] = verdict(app, covered=CHILD)
    fake.accept(db)
    _, document = _resolved(fake.plan("up", "-d"))
    assert document["services"]["app"]["image"] == f"{REG}/ns/app@{CHILD}"
    assert [a for a, _ in fake.world.verifier.asked][:2] == [app, db]
    assert [str(p.wanted) for _, p in fake.world.verifier.asked[:1] if p] == ["linux/arm64"]
    assert [e["outcome"] for e in fake.world.audit.entries][:2] == ["accepted", "accepted"]


def test_compose_file_from_stdin_is_refused(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path, monkeypatch, {"services": {}})
    with pytest.raises(UsageError, match="standard input"):
        fake.plan("-f", "-", "up")


# --- GPU reservations ----------------------------------------------------------------------


def _host() -> Any:
    from safedocker.gpu.detect import GpuDevice, HostGpu

    device = GpuDevice(index=0, name="NVIDIA H100", uuid="GPU-0", memory_total=None,
                       brand="Unknown", brand_id=None, compute_capability=(9, 0),
                       mig_current=None, mig_pending=None)
    return HostGpu(present=True, driver_version="550.54.15", cuda_version=(12, 4),
                   devices=(device,))


class _Gate:
    """What the GPU pin asks of the gate: the image's config."""

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
    compose._Gpu().pin(pin, service, _Verdict(gpu), _Gate(env))  # type: ignore[arg-type]
    assert pin.gpu_all is expected


def test_gpu_requirement_the_host_cannot_meet_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from safedocker.errors import GpuRequirementUnmet

    monkeypatch.setattr("safedocker.gpu.detect.detect_host", _host)
    monkeypatch.delenv("SAFE_DOCKER_GPU", raising=False)
    pin = ServicePin("train", "x")
    with pytest.raises(GpuRequirementUnmet):
        gate = _Gate(["CUDA_VERSION=13.0", "NVIDIA_REQUIRE_CUDA=cuda>=13.0"])
        compose._Gpu().pin(pin, {}, _Verdict("auto"), gate)  # type: ignore[arg-type]


def test_docker_global_flags_before_compose_become_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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


def test_a_compose_file_that_is_not_a_regular_file_is_refused_before_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path, monkeypatch, {"services": {}})
    os.mkfifo(fake.project / "c.yml")
    with pytest.raises(SafeDockerError, match="not a regular file"):
        fake.plan("-f", "c.yml", "up")
    assert fake.calls() == []


def test_a_file_changed_after_config_changes_nothing(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """N5 with a racing writer: the run never reads the user's files again."""
    app = f"{REG}/ns/app:v1"
    fake = Fake(tmp_path, monkeypatch, {"services": {"app": {"image": app}}})
    fake.accept(app)
    plan = fake.plan("up")
    (fake.project / "docker-compose.yml").write_text("services: {evil: {image: evil}}\n")
    argv, document = _resolved(plan)
    assert not any(str(fake.project / "docker-compose.yml") in a for a in argv)
    assert list(document["services"]) == ["app"]


@pytest.mark.parametrize("args", [["watch"], ["watch", "--no-up"], ["up", "--watch"],
                                  ["--dry-run", "scale", "app=3"]])
def test_v2_watch_and_scale_are_verified_before_compose_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    evil = f"{REG}/ns/evil:v1"
    fake = Fake(tmp_path, monkeypatch, {"name": "p", "services": {"app": {"image": evil}}},
                flavour=Flavour.V2)
    fake.world.verifier.verdicts[evil] = verdict(evil, accepted=False, reasons=("unsigned",))
    with pytest.raises(Refused, match="service 'app'"):
        fake.plan(*args)
    assert [c[-3:] for c in fake.calls()] == [["--profile=*", "config", "--format=json"]]


def test_start_asks_for_the_containers_of_the_named_service_and_its_needs_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path, monkeypatch, MODEL)
    asked: list[list[str]] = []

    def all_have(docker: str, project: str, services: list[str]) -> bool:
        asked.append(list(services))
        return True

    monkeypatch.setattr(compose, "all_have_containers", all_have)
    argv, document = _resolved(fake.plan("-p", "p", "start", "web"))
    assert asked == [["db", "web"]]
    assert argv[-2:] == ["start", "web"] and sorted(document["services"]) == ["db", "web"]


def test_read_project_resolves_the_default_file_through_compose_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path, monkeypatch, {"services": {"app": {"image": "x"}}})
    monkeypatch.setattr(compose, "find_compose", lambda docker, environ=None: _v1_fake(fake))
    assert compose.read_project(fake.project, {})["services"] == {"app": {"image": "x"}}
    [config] = fake.calls()
    assert config == [f"--file={fake.project / 'docker-compose.yml'}", "config"]


def _v1_fake(fake: Fake) -> Compose:
    return Compose(str(fake.log.parent / "fake-compose"), "1.29.2")


def test_an_image_volume_source_is_verified_and_pinned_like_the_services_image(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """compose v2 (2.35+) mounts another image's files with `volumes: - type: image`, and
    pulls it if missing: the source is an image docker gets, so it goes through the gate."""
    app, data, evil = f"{REG}/ns/app:v1", f"{REG}/ns/data:v1", f"{REG}/ns/evil:v1"
    volume = {"type": "image", "source": evil, "target": "/evil"}
    fake = Fake(tmp_path, monkeypatch, {"services": {"app": {"image": app,
                                                             "volumes": [volume]}}},
                flavour=Flavour.V2)
    fake.accept(app)
    fake.world.verifier.verdicts[evil] = verdict(evil, accepted=False, reasons=("unsigned",))
    with pytest.raises(Refused, match="volume"):
        fake.plan("up", "-d")
    assert fake.world.verifier.asked[-1][0] == evil

    fake.set_model({"services": {"app": {"image": app, "volumes": [
        {"type": "bind", "source": "/srv", "target": "/srv"},
        {**volume, "source": data}]}}}, Flavour.V2)
    fake.accept(data)
    _, document = _resolved(fake.plan("up", "-d"))
    bind, mounted = document["services"]["app"]["volumes"]
    assert bind == {"type": "bind", "source": "/srv", "target": "/srv"}
    assert mounted["source"].startswith(f"{REG}/ns/data@sha256:")
    assert document["services"]["app"]["image"].startswith(f"{REG}/ns/app@sha256:")


@pytest.mark.parametrize("model", [
    {"services": {"app": {"provider": {"type": "model", "options": {"model": "ai/x"}}}}},
    {"services": {"app": {"image": f"{REG}/ns/app:v1"}}, "models": {"llm": {"model": "ai/x"}}},
    {"services": {"app": {"image": f"{REG}/ns/app:v1"}}, "newer-key": {}},
], ids=["service provider", "top-level models", "unknown top-level key"])
def test_what_compose_runs_besides_service_images_is_refused_in_enforce(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: dict[str, Any]) -> None:
    """compose v2 `provider:` services run a plugin or binary named by the file (`type:
    model` starts docker's model runner, an image), `models:` has it pull and serve models:
    nothing the gate verifies, so not run at all."""
    fake = Fake(tmp_path, monkeypatch, model, flavour=Flavour.V2)
    fake.accept(f"{REG}/ns/app:v1")
    with pytest.raises(Refused):
        fake.plan("up", "-d")
    assert list((fake.state / "compose").iterdir()) == []
