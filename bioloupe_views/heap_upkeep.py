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
Otherwise the run prints why it left the heap and what a DBA can do. VACUUM FULL rewrites the
same rows, so what readers see never changes. pg_cron's procedure cannot VACUUM (not allowed
in a procedure's transaction); `refresh-views` does it there from time to time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

from . import definitions
from .db import first_line

BLOAT_QUERY = definitions.SQL_DIR / "_queries" / "heap_bloat.sql"
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
        return (f"rewrote {self.mart} ({why}): {_mb(self.before)} -> {_mb(self.after)} "
                f"in {self.seconds:.2f}s, its readers waiting")


def _mb(size: int | None) -> str:
    return f"{(size or 0) / 1048576:.1f} MB"


def _size(cur, regclass: str) -> tuple[int, int]:
    """The mart's total size and its heap's relfilenode (a rewrite changes it)."""
    cur.execute("SELECT pg_total_relation_size(%s::regclass), pg_relation_filenode(%s::regclass)",
                (regclass, regclass))
    return cur.fetchone()


def heap_ratio(cur, mart: str) -> float | None:
    """The mart's heap over a fresh build of its rows; None for an empty mart."""
    name = sql.Identifier(definitions.MART_SCHEMA, mart)
    query = sql.SQL(BLOAT_QUERY.read_text()).format(mart=name)
    cur.execute(query, {"mart": name.as_string(cur)})
    actual, fresh = cur.fetchone()
    return actual / fresh if fresh else None


def _why_not(cur) -> str | None:
    """Why no mart may be rewritten on this server now, or None."""
    cur.execute(STANDBYS_QUERY.read_text())
    if cur.fetchone()[0]:
        return ("a physical standby streams from this server (or holds a slot), where the "
                "rewrite's lock would cancel long queries")
    return None


def rewrite_if_bloated(conn, mart: str, up_to: int) -> Rewrite | None:
    """Rewrite the mart with VACUUM FULL when its heap is past REWRITE_AT and the rewrite is
    short; None when its heap is within bounds or the mart is over `up_to` (index_upkeep
    then keeps its indexes bounded without blocking anyone). Needs an autocommit session
    that may VACUUM FULL the mart (its owner, or MAINTAIN on 17+)."""
    conn.autocommit = True
    name = sql.Identifier(definitions.MART_SCHEMA, mart)
    with conn.cursor() as cur:
        try:
            before, filenode = _size(cur, name.as_string(cur))
            if before > up_to:
                return None
            ratio = heap_ratio(cur, mart)
        except psycopg2.DatabaseError:
            return None  # upkeep is a bonus: the run has published; a lost session shows later
        if ratio is None or ratio <= REWRITE_AT:
            return None
        advice = (f"run `refresh-views --no-concurrently --select {mart}` or VACUUM FULL it "
                  "in a quiet window")
        blocker = _why_not(cur)
        if blocker:
            return Rewrite(mart, ratio, before, None, 0.0, f"{blocker}; {advice}")
        t0 = time.monotonic()
        cur.execute("SET lock_timeout = %s", (WAIT,))
        try:
            cur.execute(sql.SQL("VACUUM FULL {}").format(name))
            after, new_filenode = _size(cur, name.as_string(cur))
            error = None
            if new_filenode == filenode:  # VACUUM skips, with a warning, what it may not touch
                after, error = None, ("this role may not VACUUM FULL it (its owner may, or "
                                      f"MAINTAIN on 17+); {advice}")
        except psycopg2.Error as exc:
            after, error = None, f"{first_line(exc)}; a later run tries again"
        finally:
            cur.execute("RESET lock_timeout")
    return Rewrite(mart, ratio, before, after, time.monotonic() - t0, error)
