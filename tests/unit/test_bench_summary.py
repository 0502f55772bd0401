"""bench.summary's interleave: the arithmetic behind every ratio the summary prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bench import summary

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


def _timed(walls: Mapping[str, list[float]], seen: list[str]
           ) -> Callable[..., tuple[float, float]]:
    """A stand-in for one timed run: case ``argv[0]`` takes its next wall time (and half
    of it in CPU)."""
    def once(argv: Sequence[str], env: Mapping[str, str], cwd: str | None = None
             ) -> tuple[float, float]:
        seen.append(argv[0])
        wall = walls[argv[0]].pop(0)
        return wall, wall / 2
    return once


def test_each_case_is_divided_by_the_baseline_of_its_own_round(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The baseline slows down from round to round; a case that always costs 10 % more
    # than that round's baseline must come out at 1.10 whatever the drift.
    base = [1.0, 2.0, 3.0, 4.0, 5.0]
    walls = {"b": list(base), "shim": [x * 1.1 for x in base], "floor": [x * 1.05 for x in base]}
    seen: list[str] = []
    monkeypatch.setattr(summary, "_once", _timed(walls, seen))
    monkeypatch.setattr(summary, "peak_rss", lambda *a, **k: 0)
    shim, floor = summary.against((["b"], {}), [(["shim"], {}), (["floor"], {})],
                                  runs=4, warmup=1)
    assert shim["wall"] == pytest.approx(1.10)
    assert floor["wall"] == pytest.approx(1.05)
    assert shim["cpu"] == pytest.approx(1.10)
    assert shim["b_ms"] == pytest.approx(3500.0)  # the warm-up round is not counted
    assert all(not times for times in walls.values())  # one run of each case per round


def test_the_rounds_go_through_every_order_so_no_case_always_follows_another(
        monkeypatch: pytest.MonkeyPatch) -> None:
    walls = {name: [1.0] * 6 for name in ("a", "c", "b")}
    seen: list[str] = []
    monkeypatch.setattr(summary, "_once", _timed(walls, seen))
    monkeypatch.setattr(summary, "peak_rss", lambda *a, **k: 0)
    summary.against((["b"], {}), [(["a"], {}), (["c"], {})], runs=6, warmup=0)
    rounds = [tuple(seen[i:i + 3]) for i in range(0, 18, 3)]
    assert len(set(rounds)) == 6  # all 3! orders, each once


def test_a_pair_alternates_which_side_runs_first(monkeypatch: pytest.MonkeyPatch) -> None:
    walls = {"a": [1.0] * 4, "b": [1.0] * 4}
    seen: list[str] = []
    monkeypatch.setattr(summary, "_once", _timed(walls, seen))
    monkeypatch.setattr(summary, "peak_rss", lambda *a, **k: 0)
    summary.pair((["a"], {}), (["b"], {}), runs=4, warmup=0)
    assert seen == ["a", "b", "b", "a", "a", "b", "b", "a"]
