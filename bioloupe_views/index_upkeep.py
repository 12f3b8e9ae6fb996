"""Rebuild a mart's indexes once refreshes have bloated them, without blocking its readers.

REFRESH ... CONCURRENTLY publishes its diff as deletes and inserts. The VACUUM before each
refresh hands the heap's dead space back for reuse, but a B-tree page that an insert split
stays split: over a 60-cycle soak the unique index of mv_efficacy_evidence grew to 1.9x a
fresh build of it while the mart's rows shrank, and it kept growing. So after a run has
published, each mart it refreshed is compared with what a fresh build of its indexes would
take (sql/_queries/index_bloat.sql); past REBUILD_AT, `REINDEX TABLE CONCURRENTLY` rebuilds
all of that mart's indexes. Readers go on reading throughout (it takes SHARE UPDATE
EXCLUSIVE, never a lock a SELECT waits for), on the primary and on hot standbys.

REINDEX CONCURRENTLY first waits for every transaction older than it, in the whole database.
A long report must not hold the run, so it waits at most WAIT (lock_timeout, as does every
lock upkeep waits for, bounded_waits): then it gives
up, the half-built copies it leaves (invalid indexes named *_ccnew*) are dropped, and a later
run tries again. Leftovers from an interrupted rebuild are dropped by the next one the same
way. pg_cron's procedure cannot do this (REINDEX CONCURRENTLY is not allowed in a procedure's
transaction); `refresh-views` runs from time to time, or a DBA's REINDEX, does it there.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

from . import definitions
from .db import first_line

BLOAT_QUERY = definitions.SQL_DIR / "_queries" / "index_bloat.sql"
LEFTOVERS_QUERY = definitions.SQL_DIR / "_queries" / "index_leftovers.sql"
RIGHTS_QUERY = definitions.SQL_DIR / "_queries" / "may_reindex.sql"
REBUILD_AT = 1.4      # an index this many times its fresh-build estimate gets its mart rebuilt
WAIT = "5s"           # the longest a rebuild waits for older transactions before giving up


@dataclass
class Rebuild:
    mart: str
    index: str            # the most bloated index, the reason for the rebuild
    ratio: float          # its size over its fresh-build estimate
    before: int           # bytes of all the mart's indexes before
    after: int | None     # and after (None when it gave up)
    seconds: float
    error: str | None = None

    def describe(self) -> str:
        why = f"{self.index} was {self.ratio:.1f}x a fresh build"
        if self.error:
            return f"left the indexes of {self.mart} as they are ({why}): {self.error}"
        return (f"rebuilt the indexes of {self.mart} concurrently ({why}): "
                f"{mb(self.before)} -> {mb(self.after)} in {self.seconds:.2f}s")


def mb(size: int | None) -> str:
    """A size for the upkeep lines, in MB."""
    return f"{(size or 0) / 1048576:.1f} MB"


def most_bloated(cur, mart: str) -> tuple[str, float] | None:
    """The mart's index furthest past REBUILD_AT, with its ratio; None if none is."""
    cur.execute(BLOAT_QUERY.read_text(), {"schema": definitions.MART_SCHEMA, "mart": mart})
    worst = max(((name, actual / fresh) for name, actual, fresh in cur.fetchall() if fresh),
                key=lambda item: item[1], default=None)
    return worst if worst and worst[1] > REBUILD_AT else None


@contextmanager
def bounded_waits(cur, timeout: str):
    """Every lock the statements inside wait for, they wait for at most `timeout`: upkeep never
    queues behind a session that holds the mart (a leftover worker, a DBA's LOCK)."""
    try:
        cur.execute("SET lock_timeout = %s", (timeout,))
    except psycopg2.Error:
        pass  # a lost session shows in the next step
    try:
        yield
    finally:
        try:
            cur.execute("RESET lock_timeout")
        except psycopg2.Error:
            pass


def _indexes_size(cur, mart: str) -> int:
    cur.execute("SELECT pg_indexes_size(%s::regclass)",
                (sql.Identifier(definitions.MART_SCHEMA, mart).as_string(cur),))
    return cur.fetchone()[0]


def drop_leftovers(cur, mart: str) -> None:
    """Drop the invalid copies an interrupted or abandoned rebuild left on the mart: every
    refresh would otherwise keep maintaining them."""
    cur.execute(LEFTOVERS_QUERY.read_text(), {"schema": definitions.MART_SCHEMA, "mart": mart})
    for (name,) in cur.fetchall():
        cur.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
            sql.Identifier(definitions.MART_SCHEMA, name)))


def rebuild_if_bloated(conn, mart: str) -> Rebuild | None:
    """Rebuild the mart's indexes when one is past REBUILD_AT; None when none is, or when
    the mart's statistics are missing. Needs an autocommit session; a role that may not
    REINDEX the mart (not its owner, no MAINTAIN on 17+) is told so. Never raises a
    database error: the run has published, and upkeep is a bonus."""
    conn.autocommit = True
    with conn.cursor() as cur, bounded_waits(cur, WAIT):
        return _rebuild_if_bloated(cur, mart)


def _rebuild_if_bloated(cur, mart: str) -> Rebuild | None:
    regclass = sql.Identifier(definitions.MART_SCHEMA, mart)
    try:
        worst = most_bloated(cur, mart)
        if worst is None:
            return None
        before = _indexes_size(cur, mart)
        cur.execute(RIGHTS_QUERY.read_text(), {"mart": regclass.as_string(cur)})
        may_reindex = cur.fetchone()[0]
    except psycopg2.DatabaseError:
        return None  # a lost session shows in the next step; the next run tries again
    if not may_reindex:
        return Rebuild(mart, worst[0], worst[1], before, None, 0.0,
                       "this role may not REINDEX them (their owner or, on 17+, a role "
                       "with MAINTAIN may); a run as the owner rebuilds them")
    t0 = time.monotonic()
    try:
        drop_leftovers(cur, mart)
        cur.execute(sql.SQL("REINDEX TABLE CONCURRENTLY {}").format(regclass))
        after, error = _indexes_size(cur, mart), None
    except psycopg2.Error as exc:
        after, error = None, f"{first_line(exc)}; a later run tries again"
        try:
            drop_leftovers(cur, mart)
        except psycopg2.Error:
            pass  # still in the way: the next rebuild drops them first
    return Rebuild(mart, worst[0], worst[1], before, after, time.monotonic() - t0, error)
