"""Reading the marts from a hot standby while the primary refreshes them.

A real streaming replica (`pg_basebackup -R`, hot_standby on) of a throwaway primary. The
source lock of test_faults.py holds a refresh of mv_efficacy_evidence open on the primary,
so the standby is read while that refresh is in progress, deterministically:
- REFRESH ... CONCURRENTLY takes an EXCLUSIVE lock, which is not WAL-logged: readers on the
  standby go on, none cancelled by a recovery conflict, none slow, and after replay the
  standby shows exactly what the primary published;
- a plain REFRESH takes ACCESS EXCLUSIVE, which is WAL-logged and replayed: readers on the
  standby wait for the primary's transaction, which is why the tool refreshes concurrently.
"""

from __future__ import annotations

import time

import psycopg2
import pytest

from bioloupe_views.dev import synthetic
from bioloupe_views.dev.pgserver import ThrowawayServer
from tests.conftest import TEST_SCALE, _sql_runner
from tests.test_faults import (SLOW, SLOW_SOURCE, Background, SourceLock, change_sources,
                               fingerprint, waiting_refresh_pid)

READ = f"SELECT count(*) FROM public.{SLOW} WHERE drug_id = %s"  # an index lookup


@pytest.fixture
def primary_and_standby():
    primary = ThrowawayServer().start()
    standby = None
    try:
        dsn = synthetic.migrated_database(primary, "replicated", TEST_SCALE)
        standby = primary.start_standby()
        yield dsn, standby.dsn("replicated")
    finally:
        if standby:
            standby.stop()
        primary.stop()


def caught_up(primary_sql, standby_sql, seconds=30):
    """Wait until the standby has replayed everything the primary has written so far: the
    insert position, which covers an asynchronous commit not yet flushed."""
    (lsn,), = primary_sql("SELECT pg_current_wal_insert_lsn()::text")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if standby_sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)) == [(True,)]:
            return
        time.sleep(0.05)
    raise AssertionError("the standby did not catch up")


def timed_reads(standby_dsn, drugs, timeout_ms=2000):
    """Each read's milliseconds (None if it was cancelled), on one standby session."""
    conn = psycopg2.connect(standby_dsn, options=f"-c statement_timeout={timeout_ms}")
    conn.autocommit = True
    timings = []
    with conn.cursor() as cur:
        for drug in drugs:
            t0 = time.perf_counter()
            try:
                cur.execute(READ, (drug,))
                cur.fetchall()
                timings.append((time.perf_counter() - t0) * 1000)
            except psycopg2.errors.QueryCanceled:
                timings.append(None)
    conn.close()
    return timings


def _refresh_held_open(cli, sql, primary, *args):
    """A refresh of the slow mart that has started on the primary and waits on its source."""
    lock = SourceLock(primary, SLOW_SOURCE)
    run = Background(cli, "refresh", "--select", SLOW, *args, dsn=primary)
    waiting_refresh_pid(sql)
    time.sleep(0.5)  # what the refresh has WAL-logged so far reaches the standby
    return lock, run


def test_standby_readers_never_wait_on_a_concurrent_refresh(primary_and_standby, cli):
    primary, standby = primary_and_standby
    sql, conn = _sql_runner(primary)
    standby_sql, standby_conn = _sql_runner(standby)
    try:
        change_sources(sql)
        drugs = [d for (d,) in sql(f"SELECT DISTINCT drug_id FROM public.{SLOW} LIMIT 200")]
        before = fingerprint(standby_sql, SLOW)
        lock, run = _refresh_held_open(cli, sql, primary)
        timings = timed_reads(standby, drugs)
        lock.release()
        assert run.join().returncode == 0
        assert None not in timings, "a standby read was cancelled or waited out its timeout"
        assert max(timings) < 100, f"slowest standby read {max(timings):.1f} ms"
        assert fingerprint(standby_sql, SLOW) == before  # nothing shown before the commit
        caught_up(sql, standby_sql)
        assert fingerprint(standby_sql, SLOW) == fingerprint(sql, SLOW)
        assert fingerprint(standby_sql, SLOW)[0] == before[0] + 1
        conflicts = standby_sql("SELECT confl_lock + confl_snapshot + confl_bufferpin"
                                " + confl_deadlock FROM pg_stat_database_conflicts"
                                " WHERE datname = 'replicated'")
        assert conflicts == [(0,)]
    finally:
        conn.close()
        standby_conn.close()


def test_a_plain_refresh_blocks_standby_readers(primary_and_standby, cli):
    primary, standby = primary_and_standby
    sql, conn = _sql_runner(primary)
    try:
        change_sources(sql)
        drugs = [d for (d,) in sql(f"SELECT DISTINCT drug_id FROM public.{SLOW} LIMIT 3")]
        lock, run = _refresh_held_open(cli, sql, primary, "--no-concurrently")
        timings = timed_reads(standby, drugs, timeout_ms=1000)
        lock.release()
        assert run.join().returncode == 0
        assert timings == [None] * len(drugs), timings  # each waited out its 1 s timeout
    finally:
        conn.close()
