"""A run never leaves anything behind: a killed client's backends go within seconds, a
session that holds a mart neither hangs a run nor a Ctrl-C, and the tool's sessions left
over from earlier runs are named by `status`, `doctor` and the next run.

Refreshes are held up deterministically: a session holding ACCESS EXCLUSIVE on a source that
only mv_efficacy_evidence reads (its REFRESH waits, holding its own lock on the mart), a
slow check on mv_development_programs (mv_efficacy_evidence's checks wait for it), or a
session holding a lock on the mart itself (SHARE UPDATE EXCLUSIVE, as a VACUUM or ANALYZE
takes; EXCLUSIVE, as a REFRESH ... CONCURRENTLY takes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

from tests.conftest import add_check, remove_check
from tests.test_faults import (SLOW, SLOW_SOURCE, SourceLock, change_sources, fingerprint,
                               run_log, runs, wait_for, waiting_refresh_pid)

UPSTREAM = "mv_development_programs"


def start_refresh(dsn: str, *args: str) -> subprocess.Popen:
    """refresh-views as from a terminal (SIGINT not ignored), in the background."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOLOUPE_")}
    env["BIOLOUPE_DATABASE_URL"] = dsn
    exe = Path(sys.executable).parent / "refresh-views"
    return subprocess.Popen([str(exe), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def backends_gone_within(sql, seconds: float) -> None:
    """No backend of refresh-views is left within `seconds`."""
    wait_for(sql, "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity"
                  " WHERE application_name = 'refresh-views')", seconds=seconds)


# LOCK TABLE does not take materialized views: these statements take the same locks and
# keep them until the transaction ends.
TAKES = {"SHARE UPDATE EXCLUSIVE": "ANALYZE public.{}",
         "EXCLUSIVE": "REFRESH MATERIALIZED VIEW CONCURRENTLY public.{}"}


def hold_mart(dsn: str, mart: str, mode: str, application_name: str):
    """Another session holding a lock on a mart, in an open transaction; returns it."""
    conn = psycopg2.connect(dsn, application_name=application_name)
    conn.cursor().execute(TAKES[mode].format(mart))
    return conn


def assert_next_run_succeeds_at_once(cli, dsn):
    t0 = time.monotonic()
    result = cli("refresh", dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Leftover" not in result.stdout and "VACUUM skipped" not in result.stdout, result.stdout
    assert time.monotonic() - t0 < 60
    return result


def test_a_client_killed_mid_refresh_leaves_no_backend(dsn, cli, sql):
    """SIGKILL while a worker's REFRESH waits for a lock: its backend does not wait on with
    the mart's lock; it goes within seconds, while the source is still locked."""
    change_sources(sql)
    before = fingerprint(sql, SLOW)
    lock = SourceLock(dsn, SLOW_SOURCE)
    process = start_refresh(dsn)
    try:
        waiting_refresh_pid(sql)
        process.kill()
        process.wait(10)
        backends_gone_within(sql, 6)
    finally:
        lock.release()
        if process.poll() is None:
            process.kill()
    assert fingerprint(sql, SLOW) == before
    assert_next_run_succeeds_at_once(cli, dsn)
    (first, _), second = runs(sql)
    assert first == "error" and second == ("success", None)


def test_a_client_killed_while_a_worker_waits_for_an_upstream_mart(dsn, cli, sql):
    """SIGKILL while mv_efficacy_evidence's checks wait for mv_development_programs (whose
    slow check keeps it running): neither worker outlives the client."""
    add_check(dsn, UPSTREAM, "slow_audit",
              "SELECT 1 AS slow WHERE pg_catalog.length(pg_catalog.pg_sleep(120)::text) < 0", severity="warn")
    process = start_refresh(dsn)
    try:
        for mart in (UPSTREAM, SLOW):
            wait_for(sql, "SELECT pid FROM pg_stat_activity WHERE application_name = 'refresh-views'"
                          " AND wait_event = 'PgSleep' AND query LIKE %s",
                     (f"%refresh_mart(%'{mart}')%",))
        process.kill()
        process.wait(10)
        backends_gone_within(sql, 6)
    finally:
        if process.poll() is None:
            process.kill()
    remove_check(dsn, "slow_audit")
    assert_next_run_succeeds_at_once(cli, dsn)


def test_a_session_holding_a_mart_does_not_hang_the_run(dsn, cli, sql):
    """Its VACUUM is skipped, its line names the holder, its refresh waits a bounded time;
    the run ends, and the other marts are refreshed."""
    holder = hold_mart(dsn, SLOW, "SHARE UPDATE EXCLUSIVE", "dba-console")
    try:
        pid = holder.get_backend_pid()
        t0 = time.monotonic()
        result = cli("refresh", dsn=dsn, timeout=120)
        elapsed = time.monotonic() - t0
        assert sql("SELECT count(*) FROM pg_locks WHERE pid = %s AND relation = %s::regclass",
                   (pid, f"public.{SLOW}")) == [(1,)]   # held throughout
    finally:
        holder.close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert elapsed < 40
    assert f"ERROR {SLOW}" in result.stdout
    assert "canceling statement due to lock timeout" in result.stdout
    assert (f"VACUUM skipped: public.{SLOW} is locked by pid {pid} (postgres, dba-console, "
            f"idle in transaction: ANALYZE public.{SLOW})"
            in result.stdout), result.stdout
    log = run_log(sql)
    assert log[SLOW][0] == "error"
    assert {s for m, (s, _) in log.items() if m != SLOW} == {"success"}
    assert_next_run_succeeds_at_once(cli, dsn)


def test_sigint_during_a_blocked_vacuum_exits_within_seconds(dsn, cli, sql):
    holder = hold_mart(dsn, SLOW, "SHARE UPDATE EXCLUSIVE", "dba-console")
    process = start_refresh(dsn)
    try:
        wait_for(sql, "SELECT pid FROM pg_stat_activity WHERE application_name = 'refresh-views'"
                      " AND wait_event_type = 'Lock' AND query LIKE %s", (f"VACUUM%{SLOW}%",),
                 seconds=60)
        signalled = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert time.monotonic() - signalled < 10
        assert process.returncode == 130, out + err
        assert "Traceback" not in err and "stopped by SIGINT" in err, err
        backends_gone_within(sql, 5)
        assert sql("SELECT count(*) FROM bioloupe_views.refresh_lock_holder()") == [(0,)]
        assert runs(sql) == [("cancelled", "cancelled: the client was interrupted")]
        assert {s for s, _ in run_log(sql).values()} <= {"success", "cancelled"}
    finally:
        holder.close()
        if process.poll() is None:
            process.kill()
    assert_next_run_succeeds_at_once(cli, dsn)


def test_leftover_sessions_are_named_by_status_doctor_and_the_next_run(dsn, cli, sql):
    # A live run's own sessions are not leftovers: its worker holds the mart's lock while
    # its REFRESH waits for the source.
    lock = SourceLock(dsn, SLOW_SOURCE)
    process = start_refresh(dsn)
    try:
        waiting_refresh_pid(sql)
        shown = cli("status", "--json", dsn=dsn)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert json.loads(shown.stdout)["leftover_sessions"] == []
    finally:
        lock.release()
        process.communicate(timeout=120)

    # As a worker of a dead client would: the lock of its REFRESH ... CONCURRENTLY, held.
    leftover = hold_mart(dsn, SLOW, "EXCLUSIVE", "refresh-views")
    try:
        pid = leftover.get_backend_pid()
        fix = f"SELECT pg_catalog.pg_terminate_backend({pid});"
        for command in ("status", "doctor"):
            shown = cli(command, dsn=dsn)
            assert shown.returncode == 0, shown.stdout + shown.stderr
            assert "Leftover sessions of earlier runs" in shown.stdout, shown.stdout
            assert f"pid {pid} (refresh-views, connected " in shown.stdout
            assert f"holds ExclusiveLock on public.{SLOW}" in shown.stdout
            assert fix in shown.stdout
        data = json.loads(cli("status", "--json", dsn=dsn).stdout)["leftover_sessions"]
        assert [(s["pid"], s["holds"], s["fix"]) for s in data] == [
            (pid, [f"ExclusiveLock on public.{SLOW}"], fix)]

        t0 = time.monotonic()
        result = cli("refresh", dsn=dsn, timeout=120)
        assert time.monotonic() - t0 < 40
        notes = [line for line in result.stdout.splitlines() if "Leftover session" in line]
        assert len(notes) == 1 and f"pid {pid} (refresh-views" in notes[0] and fix in notes[0]
        assert f"VACUUM skipped: public.{SLOW} is locked by pid {pid}" in result.stdout
        assert result.returncode == 1 and f"ERROR {SLOW}" in result.stdout
    finally:
        leftover.close()
    assert "Leftover" not in cli("status", dsn=dsn).stdout
    assert_next_run_succeeds_at_once(cli, dsn)
