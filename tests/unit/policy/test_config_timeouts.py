"""registry_timeout: read, checked, and under a lock never lengthened by the user."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from safedocker.errors import ConfigError
from safedocker.policy.config import DEFAULT_REGISTRY_TIMEOUT, load_config
from tests.unit.policy.support import fresh_dirs

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker.policy.paths import Paths


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    return fresh_dirs(tmp_path, monkeypatch)


def test_registry_timeout_defaults_to_a_minute(where: Paths) -> None:
    assert load_config(where).registry_timeout == DEFAULT_REGISTRY_TIMEOUT == 60


def test_registry_timeout_is_a_duration_and_the_user_file_wins_unlocked(where: Paths) -> None:
    where.system_config_file.write_text('registry_timeout = "2m"\n')
    assert load_config(where).registry_timeout == 120
    where.user_config_file.write_text('registry_timeout = "300s"\n')
    assert load_config(where).registry_timeout == 300


def test_a_locked_registry_timeout_cannot_be_raised_by_the_user(where: Paths) -> None:
    where.system_config_file.write_text('locked = true\nregistry_timeout = "30s"\n')
    where.user_config_file.write_text('registry_timeout = "1h"\n')
    assert load_config(where).registry_timeout == 30
    where.user_config_file.write_text('registry_timeout = "10s"\n')
    assert load_config(where).registry_timeout == 10  # shorter is never weaker


@pytest.mark.parametrize(("value", "fragment"), [
    ('"soon"', "invalid duration"),
    ("60", "must be a string"),
    ('"0s"', "between 1s and 1h"),
    ('"2h"', "between 1s and 1h"),
])
def test_a_bad_registry_timeout_is_exit_78_naming_the_file(where: Paths, value: str,
                                                           fragment: str) -> None:
    where.user_config_file.write_text(f"registry_timeout = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(where)
    assert caught.value.exit_code == 78
    assert f"{where.user_config_file}:1" in caught.value.line()
    assert fragment in caught.value.line()
