"""Memos: what a registry was seen to offer, so that a later verification asks it fewer
questions.

A memo only chooses where to look first; it never decides. The verifier stops looking
once the material found so far satisfies the policy, and a refusal has always looked
everywhere (the referrers API too), so the same registry gives the same verdict with or
without a memo, only at another cost. Three facts are kept, each for :data:`MEMO_TTL_S`
after it was last seen (then it is forgotten, so a registry that gains the referrers API
is asked again):

* :attr:`Memo.NO_REFERRERS_API`, per registry host: the OCI referrers API answered that
  there is none (404, 405, 501); referrers are read from the tag schema straight away;
* :attr:`Memo.REFERRERS_API`, per registry host: the OCI referrers API listed referrers;
  it is asked before the tag schema (which a registry that has the API seldom holds);
* :attr:`Memo.REFERRERS_FIRST`, per repository: its signatures were found in OCI
  referrers (sigstore bundles, OCI 1.1 signatures) and there was no ``.sig`` tag, so the
  referrers are read before the ``.sig`` tag.

The rows live in the cache's ``memos`` table (cache/store.py): written in one sqlite
transaction, safe under concurrent processes, at most :data:`MEMOS_MAX` rows. A row read
back is untrusted: one that fails a check (a time that is not a number, or in the
future) is removed and counts as absent; a cache that cannot be read is no memo.
"""

from __future__ import annotations

import enum
import time
from typing import TYPE_CHECKING

from safedocker.cache.rows import BadRow, check_name, check_time, untrusted
from safedocker.cache.store import recall, remember

if TYPE_CHECKING:
    import sqlite3

    from safedocker.cache.store import Cache

MEMO_TTL_S = 24 * 3600.0
MEMOS_MAX = 1024
CLOCK_SKEW_S = 300.0  # a memo dated later than this ahead of the clock is no memo


class Memo(enum.Enum):
    NO_REFERRERS_API = "no-referrers-api"  # subject: a registry host
    REFERRERS_API = "referrers-api"  # subject: a registry host
    REFERRERS_FIRST = "referrers-first"  # subject: a repository name


def recall_memo(cache: Cache | None, memo: Memo, subject: str, *,
                now: float | None = None) -> bool:
    """Whether ``memo`` holds for ``subject``, noted within :data:`MEMO_TTL_S`."""
    when = time.time() if now is None else now

    def read(c: sqlite3.Connection) -> object:
        row = c.execute("SELECT noted_at FROM memos WHERE subject=? AND fact=?",
                        (check_name(subject), memo.value)).fetchone()
        return None if row is None else row[0]

    noted = recall(cache, lambda c: c.snapshot(read))
    if noted is None:
        return False
    try:
        with untrusted():
            noted_at = check_time(noted)
        if noted_at > when + CLOCK_SKEW_S:
            raise BadRow("noted in the future")
    except BadRow:
        forget_memo(cache, memo, subject)
        return False
    return when - noted_at <= MEMO_TTL_S


def note_memo(cache: Cache | None, memo: Memo, subject: str, *,
              now: float | None = None) -> None:
    """Remember ``memo`` for ``subject`` as seen now; expired and surplus rows go."""
    when = check_time(time.time() if now is None else now)

    def write(c: sqlite3.Connection) -> None:
        c.execute("INSERT OR REPLACE INTO memos(subject, fact, noted_at) VALUES (?, ?, ?)",
                  (check_name(subject), memo.value, when))
        c.execute("DELETE FROM memos WHERE typeof(noted_at) NOT IN ('real', 'integer') "
                  "OR noted_at < ?", (when - MEMO_TTL_S,))
        c.execute("DELETE FROM memos WHERE rowid NOT IN "
                  "(SELECT rowid FROM memos ORDER BY noted_at DESC LIMIT ?)", (MEMOS_MAX,))

    remember(cache, lambda c: c.transaction(write))


def forget_memo(cache: Cache | None, memo: Memo, subject: str) -> None:
    """``memo`` no longer holds for ``subject`` (the registry answered otherwise)."""
    remember(cache, lambda c: c.transaction(
        lambda conn: conn.execute("DELETE FROM memos WHERE subject=? AND fact=?",
                                  (check_name(subject), memo.value))))
