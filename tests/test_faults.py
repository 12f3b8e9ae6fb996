"""Issue 8: faults on a real server. For each fault the marts keep their last good data, the
run log records the failure, and the next run succeeds.

A refresh is caught mid-way by holding a lock on a source table that only
mv_efficacy_evidence reads (publication_outcomes): its refresh has started (it holds its own
lock on the view) and waits, so the fault hits a refresh in progress, deterministically.
The sources were changed beforehand, so a refresh that wrongly published would be visible
in the view's fingerprint.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest

SLOW = "mv_efficacy_evidence"
SLOW_SOURCE = "publication_outcomes"
LEVEL_0 = ("mv_development_programs", "mv_drug_trials", SLOW)


def fingerprint(sql, mart):
    return sql(f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
               f" FROM public.{mart} t")[0]


def run_log(sql):
    """The marts that finished (the run log also queues the ones to come)."""
    rows = sql("SELECT mart, status, error FROM bioloupe_views.run_log"
               " WHERE status NOT IN ('pending', 'running') ORDER BY ended_at, id")
    return {mart: (status, error) for mart, status, error in rows}


def runs(sql):
    return sql("SELECT status, message FROM bioloupe_views.run ORDER BY started_at")


def change_sources(sql):
    """One new efficacy result: a refresh that publishes shows one more row."""
    sql(f"INSERT INTO {SLOW_SOURCE} (id, publication_id, drug_id, disease_id, endpoint, updated_at)"
        " SELECT 999999001, (SELECT min(id) FROM publications), (SELECT min(id) FROM drugs),"
        " (SELECT min(id) FROM diseases), 'fault-test', now()")


def wait_for(sql, query, params=None, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = sql(query, params)
        if rows:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {query}")


def waiting_refresh_pid(sql):
    """The backend refreshing the slow mart, once it waits for the source lock."""
    return wait_for(sql, "SELECT pid FROM pg_stat_activity WHERE application_name = 'refresh-views'"
                         " AND wait_event_type = 'Lock' AND query LIKE %s",
                    (f"%refresh_mart(%'{SLOW}')%",))[0][0]


def main_session_pid(sql):
    """The run's main session: the one holding the refresh lock and writing the run log."""
    return sql("SELECT pid FROM bioloupe_views.refresh_lock_holder()")[0][0]


def no_refresh_backends_left(sql):
    wait_for(sql, "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity"
                  " WHERE application_name = 'refresh-views')")


class SourceLock:
    """Another session holding ACCESS EXCLUSIVE on a source table until released."""

    def __init__(self, dsn, table):
        self.conn = psycopg2.connect(dsn)
        self.conn.cursor().execute(f"LOCK TABLE public.{table} IN ACCESS EXCLUSIVE MODE")

    def release(self):
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


class Background:
    """A CLI run in a thread, so the test can act on the server while it runs."""

    def __init__(self, cli, *args, dsn):
        self.result = None
        self.thread = threading.Thread(target=lambda: setattr(self, "result", cli(*args, dsn=dsn)))
        self.thread.start()

    def join(self, seconds=120):
        self.thread.join(seconds)
        assert self.result is not None, "the CLI did not finish"
        return self.result


def assert_one_line_error(result, *phrases):
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def assert_next_run_publishes(cli, sql, dsn, before):
    result = cli("refresh", dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    after = fingerprint(sql, SLOW)
    assert after != before and after[0] == before[0] + 1
    assert sql(f"SELECT count(*) FROM public.{SLOW} WHERE endpoint = 'fault-test'") == [(1,)]
    assert sql("SELECT count(*) FROM bioloupe_views.run WHERE status = 'running'") == [(0,)]


# --- (a) the refresh's backend is terminated ---------------------------------------------

@pytest.mark.parametrize("mode", [(), ("--threads", "1"), ("--atomic",)],
                         ids=["parallel", "one-thread", "atomic"])
def test_terminated_refresh_backend(dsn, cli, sql, mode):
    change_sources(sql)
    before = {m: fingerprint(sql, m) for m in LEVEL_0}
    lock = SourceLock(dsn, SLOW_SOURCE)
    try:
        run = Background(cli, "refresh", *mode, dsn=dsn)
        victim = waiting_refresh_pid(sql)
        assert sql("SELECT pg_terminate_backend(%s)", (victim,)) == [(True,)]
    finally:
        lock.release()
    result = run.join()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert f"ERROR {SLOW}" in result.stdout
    assert "terminating connection due to administrator command" in result.stdout \
        or "server closed the connection unexpectedly" in result.stdout
    # The killed mart keeps its last good data; the run log says what happened.
    assert fingerprint(sql, SLOW) == before[SLOW]
    status, error = run_log(sql)[SLOW]
    assert status == "error" and error
    assert runs(sql) == [("error", None)]
    if "--atomic" in mode:
        # All or nothing: the marts refreshed before it in the same transaction rolled back.
        assert {m: fingerprint(sql, m) for m in LEVEL_0} == before
        assert {s for m, (s, _) in run_log(sql).items() if m != SLOW} == {"skipped"}
    else:
        # A worker's death costs only its own mart (and its dependents, of which it has none);
        # with one thread, the marts after it get a fresh connection.
        assert {m: s for m, (s, _) in run_log(sql).items() if m != SLOW} == {
            m: "success" for m in ("mv_development_programs", "mv_drug_trials",
                                   "mv_competitive_landscape", "mv_drug_pipeline")}
    assert_next_run_publishes(cli, sql, dsn, before[SLOW])


def test_terminated_main_session(dsn, cli, sql):
    """The session holding the lock and writing the run log dies while a mart refreshes:
    the run stops with one line, the in-flight mart is not published (nothing could log it,
    and the lock is gone), and the next run records the run as abandoned."""
    change_sources(sql)
    before = fingerprint(sql, SLOW)
    lock = SourceLock(dsn, SLOW_SOURCE)
    try:
        run = Background(cli, "refresh", "--threads", "1", dsn=dsn)
        waiting_refresh_pid(sql)
        main = main_session_pid(sql)
        assert sql("SELECT pg_terminate_backend(%s)", (main,)) == [(True,)]
        wait_for(sql, "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)",
                 (main,))
    finally:
        lock.release()  # the worker's refresh now completes, but must not be published
    result = run.join()
    assert result.returncode == 1, result.stdout + result.stderr
    assert_one_line_error(result, "lost the connection to the database", "run again")
    no_refresh_backends_left(sql)
    assert fingerprint(sql, SLOW) == before
    # Its worker cancelled it and logged that, in the transaction that did not publish it.
    assert run_log(sql)[SLOW] == ("cancelled", "canceling statement due to user request")
    assert runs(sql) == [("running", None)]      # nobody could record the run's end...
    assert_next_run_publishes(cli, sql, dsn, before)
    first, second = runs(sql)                     # ...so the next run did
    assert first[0] == "error" and "abandoned" in first[1]
    assert second == ("success", None)


# --- (b) statement_timeout fires ---------------------------------------------------------

def test_statement_timeout_mid_refresh(dsn, cli, sql):
    change_sources(sql)
    before = fingerprint(sql, SLOW)
    lock = SourceLock(dsn, SLOW_SOURCE)
    try:
        t0 = time.monotonic()
        result = cli("refresh", "--statement-timeout", "1s", dsn=dsn)
        elapsed = time.monotonic() - t0
    finally:
        lock.release()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 30
    assert "canceling statement due to statement timeout" in result.stdout
    assert fingerprint(sql, SLOW) == before
    log = run_log(sql)
    assert log[SLOW][0] == "error" and "statement timeout" in log[SLOW][1]
    # The timeout is per refresh statement: the other marts and the run log were unaffected.
    assert {m: s for m, (s, _) in log.items() if m != SLOW} == {
        m: "success" for m in ("mv_development_programs", "mv_drug_trials",
                               "mv_competitive_landscape", "mv_drug_pipeline")}
    assert runs(sql) == [("error", None)]
    assert_next_run_publishes(cli, sql, dsn, before)


# --- (c) the connection drops ------------------------------------------------------------

class DroppableProxy:
    """A TCP proxy in front of the server. drop() cuts every connection through it at once
    and stops listening, as a network failure would: the client sees its sockets die, while
    the server's backends only notice when they next talk to the client."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.dropped = False
        self.guard = threading.Lock()  # a connection accepted as drop() runs is cut too
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.guard:
                if self.dropped:
                    client.close()
                    return
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def dsn(self, dsn: str) -> str:
        return dsn.replace(f":{self.upstream_port}/", f":{self.port}/")

    def drop(self):
        with self.guard:
            self.dropped = True
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_connection_drops(dsn, cli, sql, server):
    change_sources(sql)
    before = fingerprint(sql, SLOW)
    proxy = DroppableProxy(server.port)
    lock = SourceLock(dsn, SLOW_SOURCE)
    try:
        run = Background(cli, "refresh", dsn=proxy.dsn(dsn))
        orphan = waiting_refresh_pid(sql)
        proxy.drop()
        result = run.join()
    finally:
        lock.release()  # the orphaned backend finishes its refresh, but cannot commit it
    assert result.returncode == 1, result.stdout + result.stderr
    assert_one_line_error(result, "lost the connection to the database")
    assert "run again" in result.stderr
    wait_for(sql, "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)",
             (orphan,))
    assert fingerprint(sql, SLOW) == before
    assert runs(sql) == [("running", None)]
    assert_next_run_publishes(cli, sql, dsn, before)
    first, second = runs(sql)
    assert first[0] == "error" and "abandoned" in first[1]
    assert second == ("success", None)


# --- (e) the operator stops the run: Ctrl-C or SIGTERM ------------------------------------

@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_cancels_rolls_back_logs_and_exits(dsn, cli, sql, signum, code):
    """Stop starting marts, cancel the running ones on the server, log them as cancelled,
    close the run, release the lock, exit 130 / 143 within seconds. Nothing is committed
    after the signal; nothing committed is unlogged."""
    change_sources(sql)
    before = fingerprint(sql, SLOW)
    lock = SourceLock(dsn, SLOW_SOURCE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOLOUPE_")}
    env["BIOLOUPE_DATABASE_URL"] = dsn
    exe = Path(sys.executable).parent / "refresh-views"
    # As from a terminal: a job started in the background by a non-interactive shell (CI's)
    # inherits SIGINT ignored, and a program keeps an ignored signal ignored.
    process = subprocess.Popen([str(exe), "--threads", "1"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        waiting_refresh_pid(sql)
        signalled = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
        assert time.monotonic() - signalled < 10
    finally:
        lock.release()
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, out + err
    assert "Traceback" not in err and err.count("\n") == 1 and "stopped by" in err
    no_refresh_backends_left(sql)
    assert fingerprint(sql, SLOW) == before
    log = run_log(sql)
    assert log[SLOW][0] == "cancelled"
    # Every mart of the run is logged: refreshed before the signal, or cancelled.
    statuses = {s for s, _ in log.values()}
    assert statuses <= {"success", "cancelled"} and len(log) == 5
    assert runs(sql) == [("cancelled", "cancelled: the client was interrupted")]
    assert sql("SELECT count(*) FROM bioloupe_views.refresh_lock_holder()") == [(0,)]
    assert_next_run_publishes(cli, sql, dsn, before)


def test_sessions_stay_alive_under_idle_timeouts_while_a_mart_is_slow(dsn, cli, sql):
    """The lock holder and the workers waiting for upstream marts are never idle for long:
    with 2 s idle timeouts and one mart held up for 4 s, the run still succeeds."""
    change_sources(sql)
    lock = SourceLock(dsn, SLOW_SOURCE)
    release = threading.Timer(4, lock.release)
    release.start()
    try:
        result = cli("refresh", "--threads", "2", dsn=dsn, env={
            "PGOPTIONS": "-c idle_session_timeout=2000 -c idle_in_transaction_session_timeout=2000"})
    finally:
        release.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert {s for s, _ in run_log(sql).values()} == {"success"}
    assert runs(sql) == [("success", None)]


def test_a_mart_waiting_on_a_lock_gets_a_line_naming_the_blocking_session(dsn, cli, sql):
    """A refresh stuck behind another session's lock on a source says, after a few seconds,
    whom it waits for; it goes on once that session lets go."""
    lock = SourceLock(dsn, SLOW_SOURCE)
    blocker = lock.conn.get_backend_pid()
    run = Background(cli, "refresh", "-s", SLOW, dsn=dsn)
    waiting_refresh_pid(sql)
    time.sleep(5)
    lock.release()
    result = run.join()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if f"{SLOW} has waited" in line]
    assert len(lines) == 1, result.stdout
    assert f"held by pid {blocker} (" in lines[0] and "LOCK TABLE" in lines[0], lines[0]
