"""Reading the marts from a hot standby while the primary refreshes them.

A real streaming replica (`pg_basebackup -R`, hot_standby on) of a throwaway primary. The
source lock of test_faults.py holds a refresh of mv_efficacy_evidence open on the primary,
so the standby is read while that refresh is in progress, deterministically:
- REFRESH ... CONCURRENTLY takes an EXCLUSIVE lock, which is not WAL-logged: readers on the
  standby go on, none cancelled by a recovery conflict, none slow, and after replay the
  standby shows exactly what the primary published;
- a plain REFRESH takes ACCESS EXCLUSIVE, which is WAL-logged and replayed: readers on the
  standby wait for the primary's transaction, which is why the tool refreshes concurrently.
Also: hot_standby_feedback decides whether VACUUM's cleanup on the primary cancels a long
report on the standby (what doctor tells standby readers), the writing commands refuse a
standby in one line, and the read-only ones work there.
"""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from bioloupe_views.dev import synthetic
from bioloupe_views.dev.pgserver import ThrowawayServer
from tests.conftest import TEST_SCALE, _sql_runner
from tests.test_faults import (SLOW, SLOW_SOURCE, Background, SourceLock, change_sources,
                               fingerprint, waiting_refresh_pid)
from tests.test_index_upkeep import SHRINK

REPORT_SECONDS = 8  # a long report on the standby
READ = f"SELECT count(*) FROM public.{SLOW} WHERE drug_id = %s"  # an index lookup


def _replicated(standby_settings=None):
    """A primary with a migrated database and a hot standby of it: (primary DSN, standby
    DSN), both servers stopped afterwards."""
    primary = ThrowawayServer().start()
    standby = None
    try:
        dsn = synthetic.migrated_database(primary, "replicated", TEST_SCALE)
        standby = primary.start_standby(standby_settings)
        yield dsn, standby.dsn("replicated")
    finally:
        if standby:
            standby.stop()
        primary.stop()


@pytest.fixture
def primary_and_standby():
    yield from _replicated()


@pytest.fixture(params=["off", "on"])
def feedback_standby(request):
    """A standby with hot_standby_feedback off or on, that cancels a query in its way after
    1 s (max_standby_streaming_delay) and reports its oldest snapshot every second."""
    for dsn, standby in _replicated({"hot_standby_feedback": request.param,
                                      "max_standby_streaming_delay": "'1s'",
                                      "wal_receiver_status_interval": "'1s'"}):
        yield request.param, dsn, standby


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
        during = fingerprint(standby_sql, SLOW)  # the refresh is still held open
        lock.release()
        assert run.join().returncode == 0
        assert None not in timings, "a standby read was cancelled or waited out its timeout"
        assert max(timings) < 100, f"slowest standby read {max(timings):.1f} ms"
        assert during == before  # nothing shown before the commit
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


def test_hot_standby_feedback_decides_whether_vacuum_cancels_a_long_standby_query(
        feedback_standby, cli):
    """A report on the standby that outlives a refresh and the VACUUM of the rows it
    replaced: with hot_standby_feedback off, replaying that cleanup cancels the report once
    max_standby_streaming_delay has passed; with it on, the primary keeps the rows the
    report still sees, and it finishes. What doctor tells standby readers rests on this."""
    feedback, primary, standby = feedback_standby
    sql, conn = _sql_runner(primary)
    standby_sql, standby_conn = _sql_runner(standby)
    outcome = {}

    def report():
        reader = psycopg2.connect(standby)
        try:
            with reader.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM public.{SLOW}, pg_sleep({REPORT_SECONDS})")
                outcome["rows"] = cur.fetchone()[0]
        except psycopg2.Error as exc:
            outcome["error"] = str(exc).splitlines()[0]
        finally:
            reader.close()

    try:
        synthetic.mutate(conn)  # replaces rows of the mart: the refresh leaves them dead
        thread = threading.Thread(target=report)
        thread.start()
        time.sleep(2.5)  # the standby has told the primary the report's snapshot (if on)
        result = cli("refresh", "--select", SLOW, dsn=primary)
        assert result.returncode == 0, result.stdout + result.stderr
        # As the tool's VACUUM: no truncation, whose ACCESS EXCLUSIVE lock would be replayed
        # and cancel the report for another reason (a lock conflict), feedback or not.
        sql(f"VACUUM (TRUNCATE false) public.{SLOW}")
        caught_up(sql, standby_sql)
        thread.join(REPORT_SECONDS + 30)
        conflicts = _snapshot_conflicts(standby_sql, expected=1 if feedback == "off" else 0)
    finally:
        conn.close()
        standby_conn.close()
    if feedback == "off":
        assert outcome.get("error", "").startswith(
            "canceling statement due to conflict with recovery"), outcome
        assert conflicts == 1
    else:
        assert "rows" in outcome, outcome
        assert conflicts == 0


def _snapshot_conflicts(standby_sql, expected, seconds=10):
    """The standby's snapshot-conflict count, once it reaches `expected` or after `seconds`:
    16+ publish the startup process's counts with a delay."""
    deadline = time.monotonic() + seconds
    while True:
        standby_sql("SELECT pg_stat_clear_snapshot()")
        count = standby_sql("SELECT confl_snapshot FROM pg_stat_database_conflicts"
                            " WHERE datname = 'replicated'")[0][0]
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def test_a_small_bloated_mart_is_not_rewritten_while_a_standby_streams(primary_and_standby, cli):
    """The rewrite's ACCESS EXCLUSIVE would be replayed on the standby and cancel its long
    reports on the mart; the concurrent index rebuild, which takes no such lock, still runs."""
    primary, _ = primary_and_standby
    sql, conn = _sql_runner(primary)
    try:
        # Streaming, without a slot: the WAL sender is what keeps the heap as it is.
        assert sql("SELECT count(*) FROM pg_replication_slots") == [(0,)]
        assert sql("SELECT count(*) FROM pg_stat_replication")[0][0] >= 1
        sql(SHRINK)
        result = cli("--select", SLOW, dsn=primary, executable="refresh-views")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Upkeep: left {SLOW} as it is" in result.stdout, result.stdout
        assert "a physical standby streams from this server" in result.stdout
        assert f"Upkeep: rebuilt the indexes of {SLOW} concurrently" in result.stdout
    finally:
        conn.close()


def test_writing_commands_on_a_standby_are_one_line_and_change_nothing(primary_and_standby, cli):
    primary, standby = primary_and_standby
    sql, conn = _sql_runner(primary)
    try:
        runs = sql("SELECT count(*) FROM bioloupe_views.run")
        for command in (("refresh",), ("cron", "install", "--schedule", "@hourly"),
                        ("cron", "remove"), ("track-sources", "--apply")):
            result = cli(*command, dsn=standby)
            assert result.returncode != 0, (command, result.stdout + result.stderr)
            assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
            assert "is a hot standby (read-only): point the DSN at the primary" in result.stderr
        refresh_views = cli(dsn=standby, executable="refresh-views")
        assert refresh_views.returncode != 0 and "hot standby" in refresh_views.stderr
        alembic = cli("upgrade", "head", dsn=standby, executable="alembic")
        assert alembic.returncode != 0 and "Traceback" not in alembic.stdout + alembic.stderr
        assert "is a hot standby (read-only): point the DSN at the primary" in alembic.stdout + alembic.stderr
        assert sql("SELECT count(*) FROM bioloupe_views.run") == runs
    finally:
        conn.close()


def test_read_only_commands_work_on_a_standby_and_doctor_explains_it(primary_and_standby, cli):
    primary, standby = primary_and_standby
    for command in (("check",), ("status",), ("track-sources",)):
        result = cli(*command, dsn=standby)
        assert result.returncode == 0, (command, result.stdout + result.stderr)
    doctor = cli("doctor", dsn=standby)
    assert doctor.returncode == 0, doctor.stderr
    assert "is a hot standby (read-only)" in doctor.stdout
    assert "hot_standby_feedback = off" in doctor.stdout
    assert "max_standby_streaming_delay (30s)" in doctor.stdout
    assert "no query in this database has been cancelled" in doctor.stdout
    on_primary = cli("doctor", dsn=primary)
    assert on_primary.returncode == 0 and "hot standby" not in on_primary.stdout
