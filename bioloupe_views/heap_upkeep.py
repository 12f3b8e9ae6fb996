"""Rewrite a small mart's heap once refreshes have left it far larger than its rows need.

REFRESH ... CONCURRENTLY writes each changed row's new version while the old one is still
visible, and the VACUUM before each refresh only hands that space back for reuse: a heap
never shrinks. When the rows themselves shrink (a mart loses most of its rows, or its
values start to compress), the heap keeps its high-water mark. The 200-cycle soak ended at
2.3x a fresh build that way, with the indexes already bounded by index_upkeep.

Only a rewrite gives that space back, and every rewrite of a heap (VACUUM FULL, CLUSTER, a
plain REFRESH) takes ACCESS EXCLUSIVE: readers wait for it. So the rewrite is done only
where that wait is short:
- the mart, heap and indexes, is at most `up_to` bytes (refresh-views --compact-up-to,
  DEFAULT_UP_TO: VACUUM FULL rewrote about 60 MB a second on the 2-core test machine, so
  readers wait some 70 ms at the default);
- its heap is past REWRITE_AT times a fresh build of its rows (sql/_queries/heap_bloat.sql);
- the lock comes within WAIT (lock_timeout), so readers never queue long behind it;
- no physical standby streams from this server or holds a slot: a standby replays the lock
  and cancels its own queries that read the mart once they have waited
  max_standby_streaming_delay, whatever hot_standby_feedback says.
A mart over `up_to` is left to index_upkeep without a word: its heap holds steady as long as
its rows do not shrink. Otherwise, when a rule stops the rewrite (or the role may not do it),
the run prints why and what a DBA can do. The ratio is taken right after the refresh, with
its replaced rows still in the heap, so a small mart whose every refresh replaces half its
rows is rewritten after most runs: a few ms each at the default size, and it stays the size
of a fresh build. VACUUM FULL rewrites the same rows, so what readers see never changes.
pg_cron's procedure cannot VACUUM (not allowed in a procedure's transaction);
`refresh-views` does it there from time to time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

from . import definitions, index_upkeep
from .db import first_line
from .index_upkeep import mb

BLOAT_QUERY = definitions.SQL_DIR / "_queries" / "heap_bloat.sql"
SIZE_QUERY = definitions.SQL_DIR / "_queries" / "mart_size.sql"
STANDBYS_QUERY = definitions.SQL_DIR / "_queries" / "physical_standbys.sql"
REWRITE_AT = 1.4              # a heap this many times its fresh build gets rewritten
DEFAULT_UP_TO = 4 * 1024**2   # the largest mart (heap and indexes) rewritten by default
WAIT = "20ms"                 # the longest readers queue behind the rewrite's lock request


@dataclass
class Rewrite:
    mart: str
    ratio: float          # the heap over a fresh build of its rows
    before: int           # bytes of the mart, heap and indexes, before
    after: int | None     # and after (None when it left the mart as it was)
    seconds: float
    error: str | None = None

    def describe(self) -> str:
        why = f"its heap was {self.ratio:.1f}x a fresh build"
        if self.error:
            return f"left {self.mart} as it is ({why}): {self.error}"
        return (f"rewrote {self.mart} ({why}): {mb(self.before)} -> {mb(self.after)} "
                f"in {self.seconds:.2f}s, its readers waiting")


def _regclass(cur, mart: str) -> str:
    return sql.Identifier(definitions.MART_SCHEMA, mart).as_string(cur)


def _size(cur, mart: str) -> tuple[int, int, bool]:
    """The mart's total size, its heap's relfilenode, and whether this role may rewrite it."""
    cur.execute(SIZE_QUERY.read_text(), {"mart": _regclass(cur, mart)})
    return cur.fetchone()


def heap_ratio(cur, mart: str) -> float | None:
    """The mart's heap over a fresh build of its rows; None for an empty mart."""
    query = sql.SQL(BLOAT_QUERY.read_text()).format(
        mart=sql.Identifier(definitions.MART_SCHEMA, mart))
    cur.execute(query, {"mart": _regclass(cur, mart)})
    actual, fresh = cur.fetchone()
    return actual / fresh if fresh else None


def _why_not(cur, mart: str, may_rewrite: bool) -> str | None:
    """Why the mart may not be rewritten now, with what a DBA can do; None if it may."""
    quiet = (f"run `refresh-views --no-concurrently --select {mart}` or VACUUM FULL it in a "
             "quiet window")
    if not may_rewrite:
        return (f"this role may not VACUUM FULL it (its owner, the database's owner or, on "
                f"17+, a role with MAINTAIN may); {quiet}")
    cur.execute(STANDBYS_QUERY.read_text())
    if cur.fetchone()[0]:
        return ("a physical standby streams from this server (or holds a slot), where the "
                f"rewrite's lock would cancel long queries; {quiet}")
    return None


def rewrite_if_bloated(conn, mart: str, up_to: int) -> Rewrite | None:
    """Rewrite the mart with VACUUM FULL when its heap is past REWRITE_AT and the rewrite is
    short; None when its heap is within bounds or the mart is over `up_to` (index_upkeep
    then keeps its indexes bounded without blocking anyone). Needs an autocommit session.
    Never raises a database error: the run has published, and upkeep is a bonus."""
    conn.autocommit = True
    # Every wait is bounded: index_upkeep.WAIT for the reads and the leftovers' drop, WAIT
    # for the rewrite's lock.
    with conn.cursor() as cur, index_upkeep.bounded_waits(cur, index_upkeep.WAIT):
        try:
            before, filenode, may_rewrite = _size(cur, mart)
            if before > up_to:
                return None
            ratio = heap_ratio(cur, mart)
            if ratio is None or ratio <= REWRITE_AT:
                return None
            blocker = _why_not(cur, mart, may_rewrite)
        except psycopg2.DatabaseError:
            return None  # a lost session shows in the next step; the next run tries again
        if blocker:
            return Rewrite(mart, ratio, before, None, 0.0, blocker)
        t0 = time.monotonic()
        try:
            # A copy a broken REINDEX CONCURRENTLY left would come out of VACUUM FULL valid,
            # a duplicate that no later upkeep drops.
            index_upkeep.drop_leftovers(cur, mart)
            cur.execute("SET lock_timeout = %s", (WAIT,))
            try:
                cur.execute(sql.SQL("VACUUM FULL {}").format(
                    sql.Identifier(definitions.MART_SCHEMA, mart)))
            finally:
                cur.execute("SET lock_timeout = %s", (index_upkeep.WAIT,))
            after, new_filenode, _ = _size(cur, mart)
            error = None if new_filenode != filenode else "VACUUM FULL skipped it"
        except psycopg2.Error as exc:
            after, error = None, f"{first_line(exc)}; a later run tries again"
    return Rewrite(mart, ratio, before, after if error is None else None,
                   time.monotonic() - t0, error)
