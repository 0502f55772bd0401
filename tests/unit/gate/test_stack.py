"""`docker stack deploy`: read with an allowlist, the model taken once from `docker stack
config`, every image through the gate, and docker handed only our pinned file."""

from __future__ import annotations

import json
import os
import stat
import sys
from typing import TYPE_CHECKING, Any

import pytest

from safedocker.errors import ConfigError, Refused, UsageError
from safedocker.gate.stack import StackArgvError, parse_stack_argv, plan_stack
from safedocker.policy.model import Mode
from tests.unit.gate.fakes import REG, World, verdict

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker.gate.handoff import Plan

yaml = pytest.importorskip("yaml")

FAKE = """#!{python}
import json, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if "config" in sys.argv:
    out = open({model!r}).read()
    if out.startswith("FAIL:"):
        sys.stderr.write(out[5:])
        sys.exit(1)
    sys.stdout.write(out)
"""


@pytest.mark.parametrize(("argv", "files", "stack", "options"), [
    (["stack", "deploy", "-c", "a.yml", "s"], ("a.yml",), "s", ()),
    (["-H", "tcp://h:1", "stack", "up", "--compose-file=a.yml", "-cb.yml", "s", "--prune"],
     ("a.yml", "b.yml"), "s", (("--prune", None),)),
    (["stack", "deploy", "-c", "a.yml", "--detach=false", "--resolve-image", "never", "s"],
     ("a.yml",), "s", (("--detach", "false"), ("--resolve-image", "never"))),
    (["stack", "deploy", "-c", "a.yml", "--", "-s"], ("a.yml",), "-s", ()),
])
def test_stack_deploy_is_read_as_docker_reads_it(argv: list[str], files: tuple[str, ...],
                                                  stack: str,
                                                  options: tuple[Any, ...]) -> None:
    cmd = parse_stack_argv(argv)
    assert cmd.files == files and cmd.stack == stack
    assert tuple(o for o in cmd.options if o[0] != "--compose-file") == options


@pytest.mark.parametrize("argv", [
    ["stack", "deploy", "--compose", "a.yml", "s"],  # no prefixes
    ["stack", "deploy", "-c=a.yml", "s"],  # pflag would read the file `a.yml`: ambiguous
    ["stack", "deploy", "-c", "a.yml", "--bundle-file", "b", "s"],
    ["stack", "deploy", "-c", "a.yml", "-dq", "s"],
    ["stack", "deploy", "-c", "a.yml", "--prune", "--prune", "s"],
    ["stack", "deploy", "-c", "a.yml", "--resolve-image", "sometimes", "s"],
    ["stack", "deploy", "-c", "a.yml", "s", "t"],
    ["stack", "deploy", "-c", "a.yml"],
    ["stack", "deploy", "-c"],
])
def test_anything_off_the_allowlist_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(StackArgvError):
        parse_stack_argv(argv)


def test_not_a_stack_deploy_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_stack_argv(["stack", "ls"])


class Fake:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str,
                 mode: Mode = Mode.ENFORCE) -> None:
        self.log = tmp_path / "argv.log"
        (tmp_path / "model.out").write_text(model)
        script = tmp_path / "docker"
        script.write_text(FAKE.format(python=sys.executable, log=str(self.log),
                                      model=str(tmp_path / "model.out")))
        script.chmod(0o755)
        monkeypatch.setattr("safedocker._docker.binary.real_docker", lambda: str(script))
        for name in ("CONFIG", "CACHE", "STATE", "SYSTEM_CONFIG"):
            monkeypatch.setenv(f"SAFE_DOCKER_{name}_DIR", str(tmp_path / name.lower()))
        monkeypatch.setenv("SAFE_DOCKER_MODE", "enforce")
        monkeypatch.chdir(tmp_path)
        (tmp_path / "stack.yml").write_text("services: {}\n")
        self.state = tmp_path / "state"
        self.world = World(mode=mode)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def plan(self, *argv: str) -> Plan:
        return plan_stack(list(argv), gate=self.world.gate)


def test_deploy_runs_only_our_pinned_file_in_a_private_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = f"{REG}/ns/app:v1"
    fake = Fake(tmp_path, monkeypatch, f"version: '3.13'\nservices:\n  app:\n    image: {app}\n"
                "    command: [echo, $HOME]\n    x-flag: 'yes'\n")
    fake.world.verifier.verdicts[app] = verdict(app)
    plan = fake.plan("-H", "tcp://h:1", "stack", "deploy", "-c", "stack.yml", "--prune", "s")
    [config] = fake.calls()
    assert config == ["-H", "tcp://h:1", "stack", "config", "--compose-file=stack.yml"]
    [command] = plan.commands
    assert plan.workdir is not None
    ours = os.path.join(plan.workdir, "stack.yml")
    assert list(command) == ["-H", "tcp://h:1", "stack", "deploy", f"--compose-file={ours}",
                             "--prune", "--", "s"]
    assert stat.S_IMODE(os.stat(plan.workdir).st_mode) == 0o700
    with open(ours) as handle:
        document = yaml.safe_load(handle)
    assert document["services"]["app"]["image"].startswith(f"{REG}/ns/app@sha256:")
    assert document["services"]["app"]["command"] == ["echo", "$$HOME"]  # never re-read
    assert document["services"]["app"]["x-flag"] == "yes"


def test_one_unsigned_service_refuses_the_deploy_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, evil = f"{REG}/ns/app:v1", f"{REG}/ns/evil:v1"
    fake = Fake(tmp_path, monkeypatch,
                f"services:\n  app: {{image: '{app}'}}\n  evil: {{image: '{evil}'}}\n")
    fake.world.verifier.verdicts[app] = verdict(app)
    fake.world.verifier.verdicts[evil] = verdict(evil, accepted=False, reasons=("unsigned",))
    with pytest.raises(Refused, match="service 'evil'"):
        fake.plan("stack", "deploy", "-c", "stack.yml", "s")
    assert not (fake.state / "compose").exists() or not any(
        (fake.state / "compose").iterdir())


def test_an_unknown_option_is_refused_without_asking_docker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path, monkeypatch, "services: {}\n")
    with pytest.raises(StackArgvError):
        fake.plan("stack", "deploy", "--compose", "stack.yml", "s")
    assert fake.calls() == []


def test_a_docker_without_stack_config_is_refused_in_enforce_and_warned_in_warn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path, monkeypatch, 'FAIL:unknown command "config" for "docker stack"\n')
    with pytest.raises(Refused, match="cannot be verified") as raised:
        fake.plan("stack", "deploy", "-c", "stack.yml", "s")
    assert "docker CLI to 25" in raised.value.line()
    fake.world.mode = Mode.WARN
    plan = fake.plan("stack", "deploy", "-c", "stack.yml", "s")
    assert plan.commands == (("stack", "deploy", "--compose-file=stack.yml", "--", "s"),)
    assert len(fake.world.lines) == 1


@pytest.mark.parametrize("special", ["-", "fifo"])
def test_stdin_and_fifo_stack_files_are_refused(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                special: str) -> None:
    fake = Fake(tmp_path, monkeypatch, "services: {}\n")
    if special == "fifo":
        os.mkfifo(tmp_path / "fifo")
    with pytest.raises((UsageError, ConfigError)):
        fake.plan("stack", "deploy", "-c", special, "s")
    assert fake.calls() == []
