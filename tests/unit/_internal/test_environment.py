"""SAFE_DOCKER_* read one way: an empty value is unset, switches are on only for "1"."""

from __future__ import annotations

import pytest

from safedocker._internal import environment


@pytest.mark.parametrize(("text", "on"), [("1", True), ("", False), ("0", False),
                                          ("true", False), ("yes", False)])
def test_switches_are_on_only_for_1(text: str, on: bool) -> None:
    env = {environment.OFFLINE: text, environment.DRY_RUN: text}
    assert environment.offline(env) is on
    assert environment.dry_run(env) is on


def test_empty_values_are_unset() -> None:
    env = {environment.MODE: "", environment.REAL_DOCKER: "", environment.GPU: ""}
    assert environment.mode(env) is None
    assert environment.real_docker(env) is None
    assert environment.gpu_mode(env) is None
    assert environment.mode({environment.MODE: "warn"}) == "warn"


def test_log_level_is_upper_case() -> None:
    assert environment.log_level({environment.LOG: "debug"}) == "DEBUG"
    assert environment.log_level({}) == ""
