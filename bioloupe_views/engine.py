"""The refresh engine, as a client drives it: the database owns the run.

Everything that decides an outcome lives in the database (sql/project/v2/routines/), the
same for refresh-views, pg_cron's CALL bioloupe_views.refresh_all() and any other client:
- the lock (try_refresh_lock) and the message when it is taken (refresh_lock_holder);
- start_run(): validates the marts and queues them, in refresh order, in the run log;
- claim_next(): the next mart whose upstream marts all succeeded; skips dependents of a
  mart that did not;
- refresh_mart(): refresh, checks, the rule for what blocks a publish, and the mart's log
  row, committed together;
- finish_run(): closes what is left and sets the run's status.

This module only drives it: one session holds the lock and reports progress from the run
log, and `threads` worker sessions each claim and refresh the next ready mart until none is
left. With `atomic`, one session refreshes everything in one transaction.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql
from psycopg2.extras import Json

from . import definitions, heap_upkeep, index_upkeep, limits, mart_graph, roles, selection, standby
from .db import connect, first_line
from .errors import ConnectionLostError, LockBusyError
from .definitions import in_project

APPLICATION_NAME = "refresh-views"
POLL_SECONDS = 0.1
FINAL = ("success", "error", "check_failed", "skipped", "cancelled", "unchanged")
OK = ("success", "unchanged")


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
    trigger_ref: str | None = None
    retention: str = "90 days"     # how long the run log keeps a run
    vacuum: bool = True            # keep each mart's size bounded: VACUUM before its refresh
                                   # (_Worker._vacuum), rewrite or rebuild after the run
    compact_up_to: int = heap_upkeep.DEFAULT_UP_TO   # the largest mart rewritten (0: none)
    changed_only: bool = False     # refresh only marts whose inputs changed (claim_next)

    def run_options(self) -> dict:
        """What the database keeps with the run and applies to each mart."""
        return {"concurrently": self.concurrently, "checks": self.checks,
                "threads": 1 if self.atomic else self.threads, "atomic": self.atomic,
                "lock_timeout": self.lock_timeout, "statement_timeout": self.statement_timeout,
                "retention": self.retention, "changed_only": self.changed_only}


@dataclass
class MartResult:
    mart: str
    status: str                      # success | error | check_failed | skipped | cancelled | unchanged
    mode: str | None = None          # concurrent | plain
    fallback: bool = False           # plain because the view was unpopulated
    rows: int | None = None
    seconds: float = 0.0
    checks: list[dict] = field(default_factory=list)
    error: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    reason: str | None = None        # --changed-only: why it was refreshed or left unchanged
    unchanged_since: str | None = None  # an unchanged mart's last refresh

    def as_json(self) -> dict:
        return {"mart": self.mart, "status": self.status, "mode": self.mode,
                "fallback": self.fallback, "rows": self.rows, "seconds": round(self.seconds, 3),
                "error": self.error, "checks": self.checks, "reason": self.reason,
                "unchanged_since": self.unchanged_since}


@dataclass
class RunResult:
    run_id: str
    results: list[MartResult]
    seconds: float
    status: str = "success"
    rebuilds: list = field(default_factory=list)   # index_upkeep.Rebuild, one per mart rebuilt
    rewrites: list = field(default_factory=list)   # heap_upkeep.Rewrite, one per mart rewritten

    @property
    def ok(self) -> bool:
        return all(r.status in OK for r in self.results)


class Reporter:
    """What a run tells its caller; the CLI prints, tests and Dagster may collect."""

    def begin(self, marts: list[str], options: Options) -> None: ...
    def start(self, index: int, total: int, mart: str) -> None: ...
    def finish(self, index: int, total: int, result: MartResult) -> None: ...
    def upkeep(self, action) -> None: ...   # a heap rewrite or an index rebuild


_LOG_SQL = in_project("""
SELECT mart, status, mode, rows, coalesce(duration_seconds, 0)::float8, checks, error,
       sqlstate, error_context, started_at::text, ended_at::text, reason,
       to_char(unchanged_since, 'YYYY-MM-DD HH24:MI:SS')
FROM {project}.run_log WHERE run_id = %s ORDER BY position
""")


def _result(row, options: Options, server_version: int | None = None) -> MartResult:
    (mart, status, mode, rows, seconds, checks, error, sqlstate, context, started, ended,
     reason, since) = row
    if error and sqlstate == roles.INSUFFICIENT_PRIVILEGE:
        error = roles.explain_message(error, sqlstate, context, server_version)
    elif error:
        error = limits.explain(error, sqlstate)
    return MartResult(mart, status, mode, options.concurrently and mode == "plain", rows,
                      seconds, checks or [], error, started, ended, reason, since)


def acquire_lock(conn, wait_seconds: float | None) -> None:
    """Take the refresh lock, waiting up to `wait_seconds`, or say who holds it."""
    deadline = time.monotonic() + (wait_seconds or 0)
    with conn.cursor() as cur:
        while True:
            cur.execute(in_project("SELECT {project}.try_refresh_lock()"))
            if cur.fetchone()[0]:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))
        cur.execute(in_project("SELECT message FROM {project}.refresh_lock_holder()"))
        holder = cur.fetchone()
    message = holder[0] if holder else "another refresh holds the lock"
    waited = f" (waited {wait_seconds:g}s)" if wait_seconds else ""
    raise LockBusyError(f"{message}{waited}; try again later or pass --wait SECONDS")


class _Worker(threading.Thread):
    """One session that claims and refreshes ready marts until the run has none left."""

    def __init__(self, dsn: str, run_id: str, stop: threading.Event, vacuum: bool = True):
        super().__init__(daemon=True)
        self.dsn, self.run_id, self.stop, self.vacuum = dsn, run_id, stop, vacuum
        self.conn = None
        self.failure: str | None = None

    def cancel(self) -> None:
        """Cancel the statement this worker's session is running (a refresh), if any."""
        conn = self.conn
        if conn is not None and not conn.closed:
            try:
                conn.cancel()
            except psycopg2.Error:
                pass

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if self.conn is None or self.conn.closed:
                    self.conn = connect(self.dsn, APPLICATION_NAME, autocommit=False)
                mart, state = self._claim()
                if state == "done":
                    return
                if state == "wait":
                    time.sleep(POLL_SECONDS)
                    continue
                self._refresh(mart)
        except Exception as exc:  # noqa: BLE001 - reported by the driver, never lost
            self.failure = first_line(exc)
        finally:
            if self.conn is not None and not self.conn.closed:
                self.conn.close()

    def _claim(self) -> tuple[str | None, str]:
        with self.conn.cursor() as cur:
            cur.execute(in_project("SELECT mart, state FROM {project}.claim_next(%s)"), (self.run_id,))
            row = cur.fetchone()
        self.conn.commit()
        return row

    def _refresh(self, mart: str) -> None:
        if self.vacuum:
            self._vacuum(mart)
        try:
            with self.conn.cursor() as cur:
                cur.execute(in_project("SELECT {project}.apply_run_settings(%s)"), (self.run_id,))
                cur.execute(in_project("SELECT {project}.refresh_mart(%s, %s)"), (self.run_id, mart))
                status = cur.fetchone()[0]["status"]
            if self.stop.is_set() and status == "success":
                # Stopped while this mart was being checked: nothing is published after it.
                self.conn.rollback()
                _record(self.conn, self.run_id, mart, "cancelled",
                        "cancelled: the run was stopped before this mart was published")
            else:
                self.conn.commit()
        except psycopg2.Error as exc:
            # The transaction is gone (rolled back by the server if the session died):
            # record why on a session that works, and go on with the next mart.
            if self.conn.closed:
                self.conn = connect(self.dsn, APPLICATION_NAME, autocommit=False)
            else:
                self.conn.rollback()
            _record(self.conn, self.run_id, mart, "error", roles.explain(exc))


    def _vacuum(self, mart: str) -> None:
        """VACUUM the mart just before its refresh. REFRESH ... CONCURRENTLY replaces every
        changed row, so each refresh leaves the old ones dead, and frequent refreshes
        outrun autovacuum (30 quick refreshes grew a mart to 6x a fresh build). Before the
        refresh, not after: right after a publish, the other marts' refreshes of the same
        run still hold older snapshots, so VACUUM could remove nothing; the previous run's
        dead rows are removable now, and this refresh reuses their space at once. Outside
        the refresh's transaction, and without truncating the heap's empty tail: that
        takes ACCESS EXCLUSIVE, which readers queue behind and hot standbys replay (the
        next refresh fills that space anyway). So it never holds up readers; a role that may not
        vacuum the mart (not its owner, no MAINTAIN) gets a server warning and leaves it
        to autovacuum."""
        try:
            self.conn.autocommit = True
            with self.conn.cursor() as cur:
                cur.execute(sql.SQL("VACUUM (TRUNCATE false) {}").format(
                    sql.Identifier(definitions.MART_SCHEMA, mart)))
        except psycopg2.Error:
            pass  # the mart is published and logged; autovacuum will get to it
        finally:
            if not self.conn.closed:
                self.conn.autocommit = False


def _record(conn, run_id: str, mart: str, status: str, error: str | None,
            result: dict | None = None) -> None:
    with conn.cursor() as cur:
        cur.execute(in_project("SELECT {project}.record_result(%s, %s, %s, %s, %s)"),
                    (run_id, mart, status, error, Json(result or {})))
    if not conn.autocommit:
        conn.commit()


class _Progress:
    """Reports each mart once as it starts and once as it ends, read from the run log."""

    def __init__(self, marts: list[str], options: Options, reporter: Reporter):
        self.total, self.options, self.reporter = len(marts), options, reporter
        self.index: dict[str, int] = {}
        self.finished: dict[str, MartResult] = {}

    def update(self, cur, run_id: str) -> None:
        cur.execute(_LOG_SQL, (run_id,))
        version = cur.connection.server_version
        for row in cur.fetchall():
            mart, status = row[0], row[1]
            if status == "pending" or mart in self.finished:
                continue
            if mart not in self.index:
                self.index[mart] = len(self.index) + 1
                if status == "running" or status in ("success", "error", "check_failed"):
                    self.reporter.start(self.index[mart], self.total, mart)
            if status in FINAL:
                self.finished[mart] = _result(row, self.options, version)
                self.reporter.finish(self.index[mart], self.total, self.finished[mart])


def _drive_parallel(main, dsn: str, run_id: str, marts: list[str], options: Options,
                    progress: _Progress) -> None:
    stop = threading.Event()
    workers = [_Worker(dsn, run_id, stop, options.vacuum)
               for _ in range(max(1, min(options.threads, len(marts))))]
    for worker in workers:
        worker.start()
    try:
        with main.cursor() as cur:
            while any(w.is_alive() for w in workers):
                progress.update(cur, run_id)
                time.sleep(POLL_SECONDS)
            progress.update(cur, run_id)
    except BaseException:
        # Ctrl-C, or the lock session is gone: start nothing more, cancel what runs (its
        # transaction rolls back and refresh_mart logs it), and wait for the workers.
        stop.set()
        for worker in workers:
            worker.cancel()
        for worker in workers:
            worker.join(timeout=30)
        raise
    failures = [w.failure for w in workers if w.failure]
    if failures and len(progress.finished) < len(marts):
        with main.cursor() as cur:
            for mart in marts:
                if mart not in progress.finished:
                    cur.execute(in_project("SELECT {project}.record_result(%s, %s, 'error', %s)"),
                                (run_id, mart, f"its worker session failed: {failures[0]}"))
            progress.update(cur, run_id)


def _drive_atomic(dsn: str, run_id: str, marts: list[str], options: Options,
                  progress: _Progress) -> None:
    """All marts in one transaction: all change together or none does."""
    conn = connect(dsn, APPLICATION_NAME, autocommit=False)
    failed: dict | None = None
    current = None
    try:
        try:
            with conn.cursor() as cur:
                while True:
                    cur.execute(in_project("SELECT mart, state FROM {project}.claim_next(%s)"), (run_id,))
                    current, state = cur.fetchone()
                    if state != "claimed":
                        break
                    cur.execute(in_project("SELECT {project}.apply_run_settings(%s)"), (run_id,))
                    cur.execute(in_project("SELECT {project}.refresh_mart(%s, %s)"), (run_id, current))
                    result = cur.fetchone()[0]
                    if result["status"] != "success":
                        failed = result
                        break
            if failed is None:
                conn.commit()
                return
            conn.rollback()
        except psycopg2.Error as exc:
            failed = {"mart": current or "(commit)", "status": "error", "error": roles.explain(exc)}
            if conn.closed:
                conn = connect(dsn, APPLICATION_NAME, autocommit=False)
            else:
                conn.rollback()
        reason = f"rolled back with the --atomic run because {failed['mart']} failed"
        if failed["mart"] in marts:
            _record(conn, run_id, failed["mart"], failed["status"], failed["error"], failed)
        for mart in marts:
            if mart != failed["mart"]:
                _record(conn, run_id, mart, "skipped", reason)
    finally:
        conn.close()


def run(dsn: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
        options: Options | None = None, reporter: Reporter | None = None) -> RunResult:
    """Refresh the selected marts; the run and each mart's outcome go to the run log."""
    options, reporter = options or Options(), reporter or Reporter()
    main = connect(dsn, APPLICATION_NAME)
    try:
        standby.require_primary(main, dsn)
        graph = mart_graph.load(main)
        marts = selection.select(graph.order, graph.upstream, include, exclude)
        acquire_lock(main, options.wait)
        t0 = time.monotonic()
        with main.cursor() as cur:
            cur.execute(in_project("SELECT {project}.start_run(%s, %s, %s, %s)"),
                        (options.trigger, marts, Json(options.run_options()), options.trigger_ref))
            run_id = str(cur.fetchone()[0])
        progress = _Progress(marts, options, reporter)
        try:
            reporter.begin(marts, options)
            try:
                if options.atomic:
                    _drive_atomic(dsn, run_id, marts, options, progress)
                    with main.cursor() as cur:
                        progress.update(cur, run_id)
                else:
                    _drive_parallel(main, dsn, run_id, marts, options, progress)
            except KeyboardInterrupt:
                _close(main, run_id, "cancelled: the client was interrupted")
                raise
            try:
                rebuilds, rewrites = _keep_sizes_bounded(main, progress, options, reporter)
            except KeyboardInterrupt:
                _close(main, run_id, None)  # everything is published: only upkeep was cut short
                raise
            status = _close(main, run_id, None)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            # The main connection holds the lock and reads the log; workers' errors are
            # results, never exceptions. Anything but its loss is unexpected: let it show.
            if not main.closed:
                raise
            raise ConnectionLostError(
                f"lost the connection to the database during run {run_id} ({first_line(exc)}): "
                "marts not yet committed keep their last good data, and the next run records "
                "this one as abandoned; check the server, then run again") from None
        results = [progress.finished[m] for m in marts if m in progress.finished]
        return RunResult(run_id, results, time.monotonic() - t0, status, rebuilds, rewrites)
    finally:
        main.close()


def _keep_sizes_bounded(main, progress: _Progress, options: Options,
                        reporter: Reporter) -> tuple[list, list]:
    """After everything is published, and still holding the run's lock: for each mart this
    run refreshed concurrently, rewrite its heap if it has bloated and the rewrite is short
    (heap_upkeep), which rebuilds its indexes too; otherwise rebuild its indexes
    concurrently once they have bloated (index_upkeep). A plain refresh has just built
    both anew."""
    if not options.vacuum:
        return [], []
    rebuilds, rewrites = [], []
    for result in progress.finished.values():
        if result.status != "success" or result.mode != "concurrent":
            continue
        rewrite = (heap_upkeep.rewrite_if_bloated(main, result.mart, options.compact_up_to)
                   if options.compact_up_to else None)
        if rewrite:
            reporter.upkeep(rewrite)
            rewrites.append(rewrite)
            if rewrite.error is None:
                continue
        rebuild = index_upkeep.rebuild_if_bloated(main, result.mart)
        if rebuild:
            reporter.upkeep(rebuild)
            rebuilds.append(rebuild)
    return rebuilds, rewrites


def _close(main, run_id: str, message: str | None) -> str:
    """finish_run() and release the lock; returns the run's status."""
    with main.cursor() as cur:
        cur.execute(in_project("SELECT {project}.finish_run(%s, %s)"), (run_id, message))
        status = cur.fetchone()[0]
        cur.execute(in_project("SELECT {project}.release_refresh_lock()"))
    return status
