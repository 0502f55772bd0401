"""The resolved compose model: read from what compose (or `docker stack config`) printed,
written back as the one file compose runs, in a private directory nobody could plant."""

from __future__ import annotations

import json
import os
import stat
import time
from typing import TYPE_CHECKING

import pytest

from safedocker.errors import ConfigError, UsageError
from safedocker.gate.compose_model import (
    MAX_ENV_FILE,
    WORKSPACE_MAX_AGE,
    Source,
    Workspace,
    dotenv_value,
    read_env_file,
    read_model,
    render,
)

if TYPE_CHECKING:
    from pathlib import Path

yaml = pytest.importorskip("yaml")


def test_v2_json_keeps_escaped_values_and_unescapes_keys() -> None:
    printed = {"services": {"a": {"image": "x", "command": "echo $$HOME",
                                  "labels": {"k$$1": "v$$2"}}}}
    model = read_model(json.dumps(printed).encode(), Source.COMPOSE_V2)
    assert model["services"]["a"]["command"] == "echo $$HOME"  # compose reads `echo $HOME`
    assert model["services"]["a"]["labels"] == {"k$1": "v$$2"}


def test_v1_yaml_escapes_what_it_printed_raw() -> None:
    printed = (b"services:\n  a:\n    command: echo $$HOME\n    image: x\n"
               b"    volumes:\n    - /data/$x:/d:rw\nversion: '3.9'\n")
    model = read_model(printed, Source.COMPOSE_V1)
    assert model["services"]["a"]["command"] == "echo $$HOME"
    assert model["services"]["a"]["volumes"] == ["/data/$$x:/d:rw"]  # printed by repr()


def test_stack_config_is_read_as_go_reads_it_and_every_dollar_escaped() -> None:
    printed = b"services:\n  a:\n    image: x\n    command: echo $HOME\n    x-flag: yes\n"
    model = read_model(printed, Source.STACK)
    assert model["services"]["a"]["command"] == "echo $$HOME"
    assert model["services"]["a"]["x-flag"] == "yes"  # YAML 1.2: a string, not True


@pytest.mark.parametrize("source", list(Source))
def test_not_a_model_is_a_config_error(source: Source) -> None:
    with pytest.raises(ConfigError):
        read_model(b"[1, 2]", source)
    with pytest.raises(ConfigError):
        read_model(b'{"services": [1]}', source)


@pytest.mark.parametrize("source", list(Source))
def test_the_written_file_reads_back_as_the_model(source: Source) -> None:
    model = {"services": {"a": {"image": "r/a@sha256:" + "a" * 64,
                                "command": ["echo", "$$HOME", "caf\u00e9 \u0085 \u2028"],
                                "environment": {"N": 1, "B": True, "E": None}}},
             "version": "3.9"}
    text = render(model, source).decode()
    assert yaml.safe_load(text) == model
    assert "\u0085" not in text and "\u2028" not in text  # escaped, not raw line breaks


def test_a_lone_surrogate_cannot_be_written() -> None:
    with pytest.raises(ConfigError):
        render({"services": {"a": {"image": "\ud800"}}}, Source.COMPOSE_V2)


def test_a_workspace_is_private_fresh_and_never_reuses_a_file(tmp_path: Path) -> None:
    first, second = Workspace.create(tmp_path), Workspace.create(tmp_path)
    assert first.path != second.path and first.path.parent == tmp_path / "compose"
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o700
    written = first.write("compose.yml", b"services: {}\n")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    with pytest.raises(ConfigError):  # O_EXCL: a file already there is never used
        first.write("compose.yml", b"evil")
    os.symlink(tmp_path / "elsewhere", first.path / "link.yml")
    with pytest.raises(ConfigError):
        first.write("link.yml", b"x")
    assert not (tmp_path / "elsewhere").exists()
    first.remove()
    assert not first.path.exists()


def test_old_workspaces_are_pruned(tmp_path: Path) -> None:
    old = Workspace.create(tmp_path)
    then = time.time() - WORKSPACE_MAX_AGE - 60
    os.utime(old.path, (then, then))
    Workspace.create(tmp_path)
    assert not old.path.exists()


def test_env_files_are_regular_and_bounded(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.env"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_env_file(str(fifo))
    big = tmp_path / "big.env"
    big.write_bytes(b"A=" + b"x" * MAX_ENV_FILE)
    with pytest.raises(ConfigError, match="larger"):
        read_env_file(str(big))
    with pytest.raises(UsageError, match="not found"):
        read_env_file(str(tmp_path / "none.env"))


def test_dotenv_values_are_read_as_compose_writes_them() -> None:
    data = b"# c\nexport COMPOSE_PROJECT_NAME='a b'\nCOMPOSE_PROFILES=x,y # two\nA=1\nA=2\n"
    assert dotenv_value(data, "COMPOSE_PROJECT_NAME") == "a b"
    assert dotenv_value(data, "COMPOSE_PROFILES") == "x,y"
    assert dotenv_value(data, "A") == "2"
    assert dotenv_value(data, "B") is None
