"""refresh-views: refresh the selected marts in dependency order, audited, in parallel.

The work on each mart is the database's own bioloupe_views.refresh_mart() (refresh,
ANALYZE, checks), the same code pg_cron's procedure runs. This module adds what a client
does best: the lock, selection, parallel connections, timeouts, the run log and reporting.

Each mart is refreshed and checked in its own transaction, which commits only when its
error-severity checks pass; otherwise it is rolled back and readers keep the last good
data, and its dependents are skipped. With `atomic`, all marts share one transaction.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg2
from psycopg2.extras import Json

from . import mart_graph
from . import roles, selection
from .db import connect, first_line
from .errors import ConnectionLostError, LockBusyError, UserError

APPLICATION_NAME = "refresh-views"


@dataclass
class Options:
    concurrently: bool = True
    checks: bool = True
    threads: int = 4
    atomic: bool = False
    lock_timeout: str | None = None
    statement_timeout: str | None = None
    wait: float | None = None
    trigger: str = "cli"


@dataclass
class MartResult:
    mart: str
    status: str                      # success | error | check_failed | skipped
    mode: str | None = None          # concurrent | plain
    fallback: bool = False           # plain because the view was unpopulated
    rows: int | None = None
    seconds: float = 0.0
    checks: list[dict] = field(default_factory=list)
    error: str | None = None
    started_at: str | None = None
    ended_at: str | None = None

    @classmethod
    def from_payload(cls, payload: dict, seconds: float) -> "MartResult":
        return cls(mart=payload["mart"], status=payload["status"], mode=payload.get("mode"),
                   fallback=bool(payload.get("fallback")), rows=payload.get("rows"),
                   seconds=seconds, checks=payload.get("checks") or [],
                   started_at=payload.get("started_at"), ended_at=payload.get("ended_at"))

    def log_payload(self) -> dict:
        return {"mart": self.mart, "status": self.status, "mode": self.mode, "rows": self.rows,
                "error": self.error, "checks": self.checks or None,
                "started_at": self.started_at, "ended_at": self.ended_at}

    def as_json(self) -> dict:
        return {"mart": self.mart, "status": self.status, "mode": self.mode,
                "fallback": self.fallback, "rows": self.rows, "seconds": round(self.seconds, 3),
                "error": self.error, "checks": self.checks}


@dataclass
class RunResult:
    run_id: str
    results: list[MartResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.status == "success" for r in self.results)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Reporter:
    """What a run tells its caller; the CLI prints, tests may collect."""

    def begin(self, marts: list[str], options: Options) -> None: ...
    def start(self, index: int, total: int, mart: str) -> None: ...
    def finish(self, index: int, total: int, result: MartResult) -> None: ...


def acquire_lock(conn, wait_seconds: float | None) -> None:
    """Take the refresh lock, waiting up to `wait_seconds`, or say who holds it."""
    deadline = time.monotonic() + (wait_seconds or 0)
    with conn.cursor() as cur:
        while True:
            cur.execute("SELECT bioloupe_views.try_refresh_lock()")
            if cur.fetchone()[0]:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))
        cur.execute("SELECT pid, application_name, trigger, since FROM bioloupe_views.refresh_lock_holder()")
        holder = cur.fetchone()
    who = "another session"
    if holder:
        pid, app, trigger, since = holder
        who = f"pid {pid} ({trigger or app or 'unknown client'}), running since {since:%Y-%m-%d %H:%M:%S %Z}"
    waited = f" after waiting {wait_seconds:g}s" if wait_seconds else ""
    raise LockBusyError(f"another refresh holds the lock{waited}: {who}; "
                        "try again later or pass --wait SECONDS")


def _set_timeouts(cur, options: Options) -> None:
    for name, value in (("statement_timeout", options.statement_timeout),
                        ("lock_timeout", options.lock_timeout)):
        if value:
            cur.execute("SELECT set_config(%s, %s, true)", (name, value))


def _refresh_in_transaction(conn, mart: str, options: Options) -> MartResult:
    """Refresh and audit one mart in the connection's open transaction; no commit."""
    started, t0 = _now(), time.monotonic()
    try:
        with conn.cursor() as cur:
            _set_timeouts(cur, options)
            cur.execute("SELECT bioloupe_views.refresh_mart(%s, %s, %s)",
                        (mart, options.concurrently, options.checks))
            payload = cur.fetchone()[0]
        return MartResult.from_payload(payload, time.monotonic() - t0)
    except psycopg2.Error as exc:
        return MartResult(mart, "error", error=roles.explain(exc), seconds=time.monotonic() - t0,
                          started_at=started, ended_at=_now())


def _fence(conn, result: MartResult, lock_pid: int | None) -> None:
    """Publish only while the run still holds the refresh lock. The lock dies with the run's
    main session; if that session is gone (connection dropped, backend terminated), nothing
    would log this mart and another run may already be going, so it is rolled back."""
    if result.status != "success" or lock_pid is None:
        return
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM bioloupe_views.refresh_lock_holder()")
            holder = cur.fetchone()
    except psycopg2.Error as exc:
        result.status, result.error = "error", first_line(exc)
        return
    if not holder or holder[0] != lock_pid:
        result.status = "error"
        result.error = "rolled back: the run lost its refresh lock (its database session ended)"


def _finish_transaction(conn, result: MartResult) -> None:
    """Commit a successful mart, roll back anything else (readers keep the old rows)."""
    try:
        if result.status == "success":
            conn.commit()
        else:
            conn.rollback()
    except psycopg2.Error as exc:
        if result.status == "success":  # the commit failed: nothing was published
            result.status, result.error = "error", first_line(exc)
        # A failed rollback (the connection is gone) keeps the error that caused it; the
        # server rolls back a transaction whose connection ended.


class _ConnectionPool:
    """Worker connections, opened on demand and replaced when a fault closes one."""

    def __init__(self, dsn: str):
        self.dsn, self.idle, self.all = dsn, queue.SimpleQueue(), []
        self.lock = threading.Lock()
        self.lock_pid: int | None = None  # the run's main session, which holds the lock

    def get(self):
        try:
            conn = self.idle.get_nowait()
            if not conn.closed:
                return conn
        except queue.Empty:
            pass
        conn = connect(self.dsn, APPLICATION_NAME, autocommit=False)
        with self.lock:
            self.all.append(conn)
        return conn

    def put(self, conn) -> None:
        if not conn.closed:
            self.idle.put(conn)

    def close(self) -> None:
        for conn in self.all:
            if not conn.closed:
                conn.close()


def _refresh_one(pool: _ConnectionPool, mart: str, options: Options) -> MartResult:
    try:
        conn = pool.get()
    except UserError as exc:  # a replacement connection could not be opened
        return MartResult(mart, "error", error=str(exc), started_at=_now(), ended_at=_now())
    try:
        result = _refresh_in_transaction(conn, mart, options)
        _fence(conn, result, pool.lock_pid)
        _finish_transaction(conn, result)
        return result
    finally:
        pool.put(conn)


def _skip(mart: str, reason: str) -> MartResult:
    return MartResult(mart, "skipped", error=reason, started_at=_now(), ended_at=_now())


def _run_parallel(dsn, marts, graph, options, record, reporter, lock_pid=None) -> list[MartResult]:
    selected, done, pending = set(marts), {}, list(marts)
    pool, running, counter = _ConnectionPool(dsn), {}, iter(range(1, len(marts) + 1))
    pool.lock_pid = lock_pid
    indexes: dict[str, int] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, options.threads)) as executor:
            while pending or running:
                for mart in list(pending):
                    ups = graph.upstream_within(mart, selected)
                    failed = sorted(u for u in ups if u in done and done[u].status != "success")
                    if failed:
                        pending.remove(mart)
                        indexes[mart] = next(counter)
                        done[mart] = _skip(mart, f"upstream {', '.join(failed)} did not refresh")
                        record(done[mart])
                        reporter.finish(indexes[mart], len(marts), done[mart])
                    elif all(u in done for u in ups) and len(running) < options.threads:
                        pending.remove(mart)
                        indexes[mart] = next(counter)
                        reporter.start(indexes[mart], len(marts), mart)
                        running[executor.submit(_refresh_one, pool, mart, options)] = mart
                if not running:
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    mart = running.pop(future)
                    done[mart] = future.result()
                    record(done[mart])
                    reporter.finish(indexes[mart], len(marts), done[mart])
    finally:
        pool.close()
    return [done[m] for m in marts]


def _run_atomic(dsn, marts, options, record, reporter, lock_pid=None) -> list[MartResult]:
    """All marts in one transaction: all change together or none does."""
    conn = connect(dsn, APPLICATION_NAME, autocommit=False)
    results: list[MartResult] = []
    try:
        for index, mart in enumerate(marts, 1):
            reporter.start(index, len(marts), mart)
            results.append(_refresh_in_transaction(conn, mart, options))
            if results[-1].status != "success":
                break
        if results and results[-1].status == "success":
            _fence(conn, results[-1], lock_pid)
        failed = results[-1] if results and results[-1].status != "success" else None
        if failed is None:
            try:
                conn.commit()
            except psycopg2.Error as exc:
                failed = MartResult("(commit)", "error", error=first_line(exc))
        else:
            try:
                conn.rollback()
            except psycopg2.Error:
                pass  # the connection is gone, and the server rolled back with it
        if failed is not None:
            reason = f"rolled back with the --atomic run because {failed.mart} failed"
            results = [r if r is failed else _skip(r.mart, reason) for r in results
                       if r.mart in marts]
            results += [_skip(m, reason) for m in marts[len(results):]]
        for index, result in enumerate(results, 1):
            record(result)
            reporter.finish(index, len(marts), result)
    finally:
        conn.close()
    return results


def run(dsn: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
        options: Options | None = None, reporter: Reporter | None = None) -> RunResult:
    """Refresh the selected marts; the run and each mart's outcome go to the run log."""
    options, reporter = options or Options(), reporter or Reporter()
    main = connect(dsn, APPLICATION_NAME)
    try:
        graph = mart_graph.load(main)
        marts = selection.select(graph.order, graph.upstream, include, exclude)
        acquire_lock(main, options.wait)
        t0 = time.monotonic()
        with main.cursor() as cur:
            cur.execute("SELECT bioloupe_views.start_run(%s)", (options.trigger,))
            run_id = str(cur.fetchone()[0])

        def record(result: MartResult) -> None:
            with main.cursor() as cur:
                cur.execute("SELECT bioloupe_views.log_result(%s, %s, %s)",
                            (run_id, options.trigger, Json(result.log_payload())))

        try:
            reporter.begin(marts, options)
            lock_pid = main.get_backend_pid()
            if options.atomic:
                results = _run_atomic(dsn, marts, options, record, reporter, lock_pid)
            else:
                results = _run_parallel(dsn, marts, graph, options, record, reporter, lock_pid)
            outcome = RunResult(run_id, results, time.monotonic() - t0)
            with main.cursor() as cur:
                cur.execute("SELECT bioloupe_views.finish_run(%s, %s)",
                            (run_id, "success" if outcome.ok else "error"))
                cur.execute("SELECT bioloupe_views.release_refresh_lock()")
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            # The main connection holds the lock and writes the log; workers' errors are
            # results, never exceptions. Anything but its loss is unexpected: let it show.
            if not main.closed:
                raise
            raise ConnectionLostError(
                f"lost the connection to the database during run {run_id} ({first_line(exc)}): "
                "marts not yet committed keep their last good data, and the next run records "
                "this one as abandoned; check the server, then run again") from None
        return outcome
    finally:
        main.close()
