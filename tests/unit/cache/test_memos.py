"""The cache's memos: noted, read back, expired, bounded, and absent whenever what is
stored cannot be trusted."""

from __future__ import annotations

import multiprocessing
import sqlite3
from typing import TYPE_CHECKING

import pytest

from safedocker.cache import memos
from safedocker.cache.memos import (
    MEMO_TTL_S,
    Memo,
    forget_memo,
    note_memo,
    recall_memo,
)
from safedocker.cache.store import DB_NAME, Cache

if TYPE_CHECKING:
    from pathlib import Path

REGISTRY = "registry.example.com:5000"
REPOSITORY = "registry.example.com:5000/team/app"
NOW = 1_800_000_000.0


def _rows(cache: Cache) -> list[tuple[object, ...]]:
    return cache.snapshot(lambda c: c.execute(
        "SELECT subject, fact, noted_at FROM memos ORDER BY subject, fact").fetchall())


def test_a_noted_memo_is_recalled_for_its_subject_and_fact_only(cache: Cache) -> None:
    assert not recall_memo(cache, Memo.NO_REFERRERS_API, REGISTRY)
    note_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW)
    assert recall_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW + 1)
    assert not recall_memo(cache, Memo.NO_REFERRERS_API, "other.example.com", now=NOW)
    assert not recall_memo(cache, Memo.REFERRERS_FIRST, REGISTRY, now=NOW)


def test_a_memo_is_read_back_by_another_process_sharing_the_cache(tmp_path: Path) -> None:
    with Cache.open(tmp_path / "cache") as first:
        note_memo(first, Memo.REFERRERS_FIRST, REPOSITORY)
    with Cache.open(tmp_path / "cache") as second:
        assert recall_memo(second, Memo.REFERRERS_FIRST, REPOSITORY)


def test_a_memo_expires_after_its_ttl(cache: Cache) -> None:
    note_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW)
    assert recall_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW + MEMO_TTL_S)
    assert not recall_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW + MEMO_TTL_S + 1)


def test_noting_a_memo_again_renews_it(cache: Cache) -> None:
    note_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW)
    note_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW + MEMO_TTL_S)
    assert recall_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW + MEMO_TTL_S * 1.5)


def test_a_forgotten_memo_is_absent(cache: Cache) -> None:
    note_memo(cache, Memo.REFERRERS_FIRST, REPOSITORY, now=NOW)
    forget_memo(cache, Memo.REFERRERS_FIRST, REPOSITORY)
    assert not recall_memo(cache, Memo.REFERRERS_FIRST, REPOSITORY, now=NOW)


@pytest.mark.parametrize("noted_at", ["yesterday", b"\x00", -5.0])
def test_a_corrupt_memo_row_is_absent_and_removed(cache: Cache, noted_at: object) -> None:
    cache.transaction(lambda c: c.execute(
        "INSERT INTO memos(subject, fact, noted_at) VALUES (?, ?, ?)",
        (REGISTRY, Memo.NO_REFERRERS_API.value, noted_at)))
    assert not recall_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW)
    assert _rows(cache) == []


def test_a_memo_dated_in_the_future_is_absent(cache: Cache) -> None:
    note_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW + 86400)  # never expiring
    assert not recall_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW)
    assert _rows(cache) == []


def test_a_cache_file_that_is_not_a_database_holds_no_memo(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / DB_NAME).write_bytes(b"no-referrers-api registry.example.com:5000 " * 100)
    with Cache.open(directory) as cache:  # moved aside, rebuilt empty
        assert not recall_memo(cache, Memo.NO_REFERRERS_API, REGISTRY)


def test_without_a_cache_nothing_is_remembered() -> None:
    note_memo(None, Memo.NO_REFERRERS_API, REGISTRY)
    assert not recall_memo(None, Memo.NO_REFERRERS_API, REGISTRY)


def test_a_subject_the_cache_cannot_name_is_never_a_memo(cache: Cache) -> None:
    note_memo(cache, Memo.NO_REFERRERS_API, "bad name\n")
    assert not recall_memo(cache, Memo.NO_REFERRERS_API, "bad name\n")
    assert _rows(cache) == []


def test_the_memos_are_bounded_newest_kept(cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memos, "MEMOS_MAX", 3)
    for n in range(5):
        note_memo(cache, Memo.NO_REFERRERS_API, f"r{n}.example.com", now=NOW + n)
    assert [row[0] for row in _rows(cache)] == ["r2.example.com", "r3.example.com",
                                                 "r4.example.com"]


def test_expired_memos_are_removed_when_another_is_noted(cache: Cache) -> None:
    note_memo(cache, Memo.NO_REFERRERS_API, "old.example.com", now=NOW)
    note_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW + MEMO_TTL_S + 1)
    assert [row[0] for row in _rows(cache)] == [REGISTRY]


def test_prune_removes_memos_like_other_rows(cache: Cache) -> None:
    note_memo(cache, Memo.NO_REFERRERS_API, REGISTRY, now=NOW)
    assert cache.prune(60, now=NOW + 120) == 1
    assert _rows(cache) == []


def _note_many(directory: str, worker: int) -> None:
    from pathlib import Path

    with Cache.open(Path(directory)) as cache:
        for n in range(20):
            note_memo(cache, Memo.NO_REFERRERS_API, f"w{worker}-{n}.example.com")


def test_processes_noting_memos_at_once_lose_none(tmp_path: Path) -> None:
    Cache.open(tmp_path / "cache").close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_note_many, args=(str(tmp_path / "cache"), w))
               for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with Cache.open(tmp_path / "cache") as cache:
        assert len(_rows(cache)) == 80
        assert all(recall_memo(cache, Memo.NO_REFERRERS_API, f"w{w}-{n}.example.com")
                   for w in range(4) for n in range(20))


def test_the_memos_table_is_added_to_a_cache_made_before_it(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    Cache.open(directory).close()
    with sqlite3.connect(directory / DB_NAME) as conn:
        conn.execute("DROP TABLE memos")
    with Cache.open(directory) as cache:
        note_memo(cache, Memo.REFERRERS_FIRST, REPOSITORY)
        assert recall_memo(cache, Memo.REFERRERS_FIRST, REPOSITORY)
