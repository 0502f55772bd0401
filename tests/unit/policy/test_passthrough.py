"""``passthrough``: the CLI plugins docker may run without the gate. A user lists their
own; under a lock only the system's list counts (and the lock says so)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from safedocker.errors import ConfigError
from safedocker.policy.config import load_config
from tests.unit.policy.test_lock import lines_saying_the_lock_won, locked, where

if TYPE_CHECKING:
    from safedocker.policy.paths import Paths

__all__ = ["where"]  # the fixture


def test_user_and_system_lists_add_up_without_a_lock(where: Paths) -> None:
    where.system_config_file.write_text('passthrough = ["scout"]\n')
    where.user_config_file.write_text('passthrough = ["sbom"]\n')
    assert load_config(where).passthrough == {"scout", "sbom"}


def test_under_a_lock_only_the_system_list_counts(
        where: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    locked(where, 'passthrough = ["scout"]\n')
    where.user_config_file.write_text('passthrough = ["scout", "evil"]\n')
    assert load_config(where).passthrough == {"scout"}
    (said,) = lines_saying_the_lock_won(capsys)
    assert f"passthrough in {where.user_config_file} ignored" in said


@pytest.mark.parametrize("name", ["run", "buildx", "compose", "Scout", "../x", "", "a b"])
def test_a_docker_command_or_a_bad_name_is_a_config_error(where: Paths, name: str) -> None:
    where.user_config_file.write_text(f'passthrough = ["{name}"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(where)
    assert info.value.exit_code == 78
