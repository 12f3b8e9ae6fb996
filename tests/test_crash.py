"""A server that stops dead in the middle of a refresh, and one that runs out of temp space.

The crash gets a server of its own (`pg_ctl stop -m immediate` would take the session's
shared server down with it). In both cases the marts keep their last committed data, the
run is closed as what it was, and the next `refresh-views` succeeds and equals the seed.
"""

from __future__ import annotations

import psycopg2
import pytest

from bioloupe_views.dev import synthetic
from bioloupe_views.dev.pgserver import ThrowawayServer
from tests.conftest import TEST_SCALE, _sql_runner, assert_equal_to_seed
from tests.test_faults import (SLOW, SLOW_SOURCE, Background, SourceLock, change_sources,
                               fingerprint, waiting_refresh_pid)


@pytest.fixture
def own_server():
    """A migrated database with sources, on a server that this test may crash."""
    # Commits flushed at once, as on a production server: the throwaway default
    # (synchronous_commit off) may lose the run's last commits in the crash itself.
    server = ThrowawayServer(settings={"synchronous_commit": "on"}).start()
    try:
        yield server, synthetic.migrated_database(server, "crash", TEST_SCALE)
    finally:
        server.stop()


def test_a_crash_mid_refresh_keeps_the_marts_and_the_next_run_recovers(own_server, cli):
    server, dsn = own_server
    sql, conn = _sql_runner(dsn)
    change_sources(sql)  # a refresh that wrongly published would show one more row
    before = {mart: fingerprint(sql, mart) for mart in (SLOW, "mv_drug_trials")}
    lock = SourceLock(dsn, SLOW_SOURCE)
    run = Background(cli, "refresh", dsn=dsn)
    waiting_refresh_pid(sql)  # the slow mart's refresh has started and waits
    conn.close()
    server.crash()
    result = run.join()
    lock.conn.close()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    server.restart()

    sql, conn = _sql_runner(dsn)
    try:
        # The slow mart holds its last committed data; marts that committed before the crash
        # are logged as such, and the run is still the one the crash interrupted.
        assert fingerprint(sql, SLOW) == before[SLOW]
        (status,), = sql("SELECT status FROM bioloupe_views.run")
        assert status == "running"
        shown = cli("status", dsn=dsn)
        assert "Last run: interrupted (cli)" in shown.stdout, shown.stdout
        assert "No refresh is running." in shown.stdout
        published = sql("SELECT mart FROM bioloupe_views.run_log WHERE status = 'success'")
        for (mart,) in published:
            assert mart != SLOW
        # The next run closes the interrupted one as abandoned, and refreshes everything.
        again = cli("refresh", dsn=dsn)
        assert again.returncode == 0, again.stdout + again.stderr
        runs = sql("SELECT status, message FROM bioloupe_views.run ORDER BY started_at")
        assert runs[0] == ("error", "abandoned: its session ended before the run finished")
        assert runs[1][0] == "success"
        unfinished = sql("SELECT status, error FROM bioloupe_views.run_log WHERE run_id ="
                         " (SELECT run_id FROM bioloupe_views.run ORDER BY started_at LIMIT 1)"
                         " AND status NOT IN ('success')")
        assert unfinished and all(s in ("error", "skipped") for s, _ in unfinished)
        assert sql(f"SELECT count(*) FROM public.{SLOW} WHERE endpoint = 'fault-test'") == [(1,)]
        assert_equal_to_seed(psycopg2.connect(dsn))
    finally:
        conn.close()


def test_out_of_temp_space_is_one_error_and_loses_nothing(dsn, cli, sql):
    change_sources(sql)
    before = fingerprint(sql, SLOW)
    # Sorts and hashes spill at once, and may not spill more than 64 kB.
    starved = {"PGOPTIONS": "-c work_mem=64kB -c temp_file_limit=64kB"}
    result = cli("--select", SLOW, "--json", "/dev/stdout", dsn=dsn, env=starved,
                 executable="refresh-views")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    ((status, error, sqlstate),) = sql(
        "SELECT status, error, sqlstate FROM bioloupe_views.run_log WHERE mart = %s", (SLOW,))
    assert (status, sqlstate) == ("error", "53400"), error
    assert "temp_file_limit" in error
    assert f"ERROR {SLOW}" in result.stdout and "temp_file_limit" in result.stdout
    # The report says what to do about it, not only what PostgreSQL said.
    assert "raise temp_file_limit" in result.stdout
    assert "the mart keeps its last good data" in result.stdout
    assert fingerprint(sql, SLOW) == before  # nothing published
    assert sql("SELECT status FROM bioloupe_views.run") == [("error",)]
    # With room again, the next run publishes.
    again = cli("--select", SLOW, dsn=dsn, executable="refresh-views")
    assert again.returncode == 0, again.stdout + again.stderr
    assert fingerprint(sql, SLOW)[0] == before[0] + 1
