"""The one way to the daemon: the docker CLI, with the user's connection flags."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from safedocker._docker.engine import DockerCLI, connection_globals
from safedocker.errors import SafeDockerError

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(("argv", "flags"), [
    (["run", "img"], ()),
    (["-H", "tcp://h:2376", "--tlsverify", "-D", "run", "img"],
     ("--host=tcp://h:2376", "--tlsverify")),
    (["--context=prod", "-l", "debug", "pull", "img"], ("--context=prod",)),
    (["--config", "/cfg", "--tlscacert=/ca.pem", "--tls=false", "image", "pull", "img"],
     ("--config=/cfg", "--tlscacert=/ca.pem", "--tls=false")),
    (["-cprod", "container", "run", "img"], ("--context=prod",)),
])
def test_only_the_flags_that_choose_the_daemon_are_kept(argv: list[str],
                                                        flags: tuple[str, ...]) -> None:
    assert connection_globals(argv) == flags
    assert DockerCLI.for_command("/bin/docker", argv).globals == flags


@pytest.fixture
def docker(tmp_path: Path) -> tuple[Path, Path]:
    """A docker that records its argv and answers `info` and `image inspect` of `known`."""
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "docker"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "args = [a for a in sys.argv[1:] if not a.startswith('--host=')]\n"
        "if args[:1] == ['info']:\n"
        "    print(json.dumps({'OSType': 'linux', 'Architecture': 'aarch64',"
        " 'ServerVersion': '28.2.2'}))\n"
        "elif args[:2] == ['image', 'inspect'] and args[-1] == 'known':\n"
        "    print('sha256:' + 'a' * 64)\n"
        "elif args[:1] == ['load']:\n"
        "    print(len(sys.stdin.buffer.read()) if '--input' not in args else args[-1])\n"
        "elif args[:1] == ['tag']:\n"
        "    sys.exit('Error response from daemon: No such image: ' + args[1])\n"
        "else:\n"
        "    sys.exit(1)\n")
    script.chmod(0o755)
    return script, log


def test_every_question_carries_the_users_flags(docker: tuple[Path, Path]) -> None:
    script, log = docker
    engine = DockerCLI(str(script), ("--host=tcp://h:1",))
    assert engine.image_id("known") == "sha256:" + "a" * 64
    assert engine.image_id("unknown") is None
    info = engine.info()
    assert (info.os_type, info.architecture, info.server_version) == (
        "linux", "aarch64", "28.2.2")
    with pytest.raises(SafeDockerError, match="docker tag failed") as failed:
        engine.tag("missing", "repo:tag")
    assert failed.value.why == "Error response from daemon: No such image: missing"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0] == ["--host=tcp://h:1", "image", "inspect", "--format", "{{.Id}}", "known"]
    assert all(call[0] == "--host=tcp://h:1" for call in calls)
    assert calls[2] == ["--host=tcp://h:1", "info", "--format", "{{json .}}"]


def test_a_daemon_that_cannot_be_asked_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(SafeDockerError, match="cannot run docker"):
        DockerCLI(str(tmp_path / "no-docker")).info()


def test_load_from_a_file_or_from_a_stream(docker: tuple[Path, Path], tmp_path: Path) -> None:
    script, log = docker
    engine = DockerCLI(str(script))
    archive = tmp_path / "images.tar"
    archive.write_bytes(b"x" * 10)
    engine.load(archive)
    with open(archive, "rb") as stream:
        engine.load(stream)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["load", "--quiet", "--input", str(archive)], ["load", "--quiet"]]


def _stuck_docker(tmp_path: Path, body: str) -> str:
    script = tmp_path / "docker"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def test_a_daemon_that_never_answers_times_out_with_exit_69(tmp_path: Path) -> None:
    from safedocker.errors import ExitCode, TimedOut

    cli = DockerCLI(_stuck_docker(tmp_path, "exec sleep 60\n"), query_timeout=0.5)
    with pytest.raises(TimedOut) as err:
        cli.info()
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert err.value.line().startswith("safe-docker: docker info timed out — no answer within")


def test_a_docker_that_floods_its_output_is_stopped(tmp_path: Path) -> None:
    cli = DockerCLI(_stuck_docker(tmp_path, "exec yes\n"))
    with pytest.raises(SafeDockerError, match="docker info failed") as err:
        cli.info()
    assert "more than" in err.value.why


def test_an_images_run_config_is_asked_only_by_who_needs_it(tmp_path: Path) -> None:
    """Whether an image is present never depends on its config's size: a config docker
    prints in more than the output cap is asked for only by the GPU decisions."""
    script = tmp_path / "docker"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        "template = sys.argv[-2]\n"
        "config = {'Env': ['X=' + '\\u2028' * (3 * 1024 * 1024)]}\n"  # 18 MiB as docker prints it
        "out = ['sha256:' + 'a' * 64, ['app:1'], []]\n"
        "if '.Config' in template:\n"
        "    out.append(config)\n"
        "print(json.dumps(out))\n")
    script.chmod(0o755)
    engine = DockerCLI(str(script))
    local = engine.inspect_image("app:1")
    assert local is not None and local.id == "sha256:" + "a" * 64 and local.config is None
    with pytest.raises(SafeDockerError, match="docker image failed"):
        engine.inspect_image("app:1", config=True)
