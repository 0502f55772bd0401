"""Option values checked after parsing: each bad value is a usage error naming the option."""

from __future__ import annotations

import pytest

from safedocker.errors import ExitCode, UsageError
from safedocker.ops.args import choice, count, key_value, prune_age
from safedocker.policy.model import Tlog


def test_key_value_splits_at_the_first_equals_sign() -> None:
    assert key_value("a=b=c", "--annotation") == ("a", "b=c")
    assert key_value("a=", "--annotation") == ("a", "")


@pytest.mark.parametrize("item", ["novalue", "=value", ""])
def test_key_value_without_a_key_is_a_usage_error_naming_the_option(item: str) -> None:
    with pytest.raises(UsageError) as caught:
        key_value(item, "--remap", "policy add")
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.line().startswith(f"safe-docker: invalid --remap {item!r}")


def test_choice_accepts_only_the_enum_values_and_names_them() -> None:
    assert choice("--tlog", "off", Tlog) == "off"
    with pytest.raises(UsageError, match="required | optional | off"):
        choice("--tlog", "OFF", Tlog)


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5", "\u0661"])  # ARABIC-INDIC DIGIT ONE
def test_count_refuses_anything_but_a_whole_number_from_one(value: str) -> None:
    with pytest.raises(UsageError, match="at least 1"):
        count("--threshold", value, 3)


def test_count_refuses_more_than_the_signers_given() -> None:
    assert count("--threshold", "2", 2) == 2
    with pytest.raises(UsageError, match="only 2 signers given"):
        count("--threshold", "3", 2)


def test_prune_age_takes_exactly_one_of_older_than_and_all() -> None:
    assert prune_age("2h", False) == 7200
    assert prune_age(None, True) == 0
    for older_than, everything in ((None, False), ("1d", True)):
        with pytest.raises(UsageError, match="cache prune"):
            prune_age(older_than, everything)
    with pytest.raises(UsageError, match="invalid --older-than"):
        prune_age("forever", False)
