"""compose config's output is read with a cap and an end, and parsed without expansion bombs.

Attack N12: a 632-byte compose file with nested YAML aliases made compose print ~100 MB,
all of which safe-docker held before its size check. Here compose is a small script that
floods, stalls, or prints alias bombs; safe-docker stops it and refuses (exit 78 or 69).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import TYPE_CHECKING

import pytest

from safedocker.errors import ConfigError, ExitCode, TimedOut
from safedocker.gate import compose
from safedocker.gate.compose import Compose, load_model
from safedocker.gate.compose_model import YAML_ALIAS_EXPANSION_MAX, Source, read_model

if TYPE_CHECKING:
    from pathlib import Path


def _fake_compose(tmp_path: Path, body: str) -> Compose:
    script = tmp_path / "docker-compose"
    script.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    script.chmod(0o755)
    return Compose(str(script), "1.29.2")


def _bomb(levels: int, width: int = 10) -> str:
    lines = ['x-l0: &l0 ["lol"]']
    lines += [f"x-l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]"
              for i in range(1, levels + 1)]
    lines += ["services:", "  app:", "    image: busybox", f"    x-boom: *l{levels}"]
    return "\n".join(lines) + "\n"


def test_a_compose_that_floods_its_config_output_is_stopped_at_the_cap(tmp_path: Path) -> None:
    fake = _fake_compose(tmp_path, "while True: sys.stdout.write('x: ' + 'y' * 65536 + '\\n')")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(ConfigError, match="too large") as err:
        load_model(fake, "docker", ["config"], ["compose.yml"])
    assert err.value.exit_code == ExitCode.CONFIG
    assert time.monotonic() - started < 20
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024  # the cap is 16 MiB; never the whole flood


def test_a_compose_config_that_never_ends_times_out(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compose, "CONFIG_TIMEOUT", 1.0)
    fake = _fake_compose(tmp_path, "time.sleep(60)")
    with pytest.raises(TimedOut, match="compose config timed out") as err:
        load_model(fake, "docker", ["config"], ["compose.yml"])
    assert err.value.exit_code == ExitCode.UNAVAILABLE


def test_yaml_alias_bombs_are_refused_before_they_expand() -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match="aliases expand") as err:
        read_model(_bomb(9).encode(), Source.COMPOSE_V1)  # 10**9 nodes expanded
    assert err.value.exit_code == ExitCode.CONFIG
    assert time.monotonic() - started < 5


def test_a_few_aliases_as_compose_files_use_them_are_fine() -> None:
    text = _bomb(3)  # 1000 extra nodes
    assert 10**3 < YAML_ALIAS_EXPANSION_MAX
    project = read_model(text.encode(), Source.COMPOSE_V1)
    assert project["services"]["app"]["image"] == "busybox"


def test_a_recursive_yaml_alias_is_refused() -> None:
    text = "x: &a [1, *a]\nservices: {}\n"
    with pytest.raises(ConfigError, match="recursive"):
        read_model(text.encode(), Source.COMPOSE_V1)


@pytest.mark.parametrize("json_output", [True, False])
def test_deep_nesting_is_a_config_error_not_a_crash(json_output: bool) -> None:
    deep = "[" * 5_000 + "]" * 5_000  # past the recursion limit of both parsers
    with pytest.raises(ConfigError):
        read_model(deep.encode(), Source.COMPOSE_V2 if json_output else Source.COMPOSE_V1)


def test_compose_v2_json_with_duplicate_members_is_refused() -> None:
    doc = b'{"services": {"app": {"image": "good", "image": "evil"}}}'
    with pytest.raises(ConfigError):
        read_model(doc, Source.COMPOSE_V2)
    assert read_model(json.dumps({"services": {}}).encode(), Source.COMPOSE_V2) == {
        "services": {}}


def test_a_compose_file_with_an_alias_bomb_is_refused_before_compose_runs(
        tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    fake = _fake_compose(tmp_path, f"open({str(ran)!r}, 'w').close()\nprint('services: {{}}')")
    bomb = tmp_path / "compose.yml"
    bomb.write_text('version: "3.8"\n' + _bomb(6))  # 451 bytes; compose 1.x: minutes, ~900 MB
    with pytest.raises(ConfigError, match="refusing the compose file") as err:
        load_model(fake, "docker", ["config"], [str(bomb)])
    assert str(bomb) in err.value.line() and "aliases expand" in err.value.line()
    assert not ran.exists()


def test_a_fifo_is_not_read_before_compose_reads_it(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "compose.yml"
    os.mkfifo(fifo)
    fake = _fake_compose(tmp_path, "print('services: {}')")  # never opens the FIFO either
    assert load_model(fake, "docker", ["config"], [str(fifo)]) == {"services": {}}
