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

No session outlives its run: each backend checks every CLIENT_CHECK that this client is
still there (a killed client takes its backends and their locks with it); the locks waited
for outside the refresh itself are bounded (the VACUUM before it, VACUUM_WAIT; a mart found
locked is refreshed, with a bounded wait, and its line names the holder); Ctrl-C and
SIGTERM stop every session within seconds whatever it waits on (_stop_sessions); and the
tool's sessions left over from earlier runs are named before the run starts (sessions.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psycopg2
import psycopg2.errors
from psycopg2 import sql
from psycopg2.extras import Json

from . import definitions, heap_upkeep, index_upkeep, limits, mart_graph, roles, selection, standby
from . import missing_marts, sessions
from .db import connect, first_line
from .errors import ConnectionLostError, LockBusyError
from .definitions import in_project

APPLICATION_NAME = "refresh-views"
POLL_SECONDS = 0.1
CLIENT_CHECK = "1s"        # how often the run's backends check that this client is alive
VACUUM_WAIT = "2s"         # the longest a VACUUM before a refresh waits for the mart's lock
LOCKED_MART_WAIT = "5s"    # and then its refresh, without --lock-timeout
STOP_SECONDS = 5           # Ctrl-C / SIGTERM: how long sessions get to stop before they are ended
LOCK_WAIT_NOTE_SECONDS = 3 # a mart waiting on a lock this long gets a line naming the holder
STOPPED = "cancelled: the run was stopped before this mart finished"
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
    strategy: str = "concurrent"   # concurrent | swap | auto: how each mart is published
                                   # (the database's plan_strategy() decides per mart)
    swap_wait: str | None = None   # how long a swap retries for its locks (default 60s)
    swap_share: float | None = None  # auto: swap above this share of changed rows
                                     # (default: plan_strategy()'s, from the benchmark)

    def run_options(self) -> dict:
        """What the database keeps with the run and applies to each mart."""
        return {"concurrently": self.concurrently, "checks": self.checks,
                "threads": 1 if self.atomic else self.threads, "atomic": self.atomic,
                "lock_timeout": self.lock_timeout, "statement_timeout": self.statement_timeout,
                "retention": self.retention, "changed_only": self.changed_only,
                "strategy": self.strategy,
                **({"swap_wait": self.swap_wait} if self.swap_wait else {}),
                **({"swap_share": self.swap_share} if self.swap_share is not None else {})}


@dataclass
class MartResult:
    mart: str
    status: str                      # success | error | check_failed | skipped | cancelled | unchanged
    mode: str | None = None          # concurrent | plain | swap
    fallback: bool = False           # plain because the view was unpopulated
    rows: int | None = None
    seconds: float = 0.0
    checks: list[dict] = field(default_factory=list)
    error: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    reason: str | None = None        # --changed-only: why it was refreshed or left unchanged
    unchanged_since: str | None = None  # an unchanged mart's last refresh
    note: str | None = None          # what the worker saw (VACUUM skipped: who held the lock)
    strategy: str | None = None      # concurrent | swap, as the run chose for this mart
    strategy_reason: str | None = None
    inserted: int | None = None      # rows a concurrent refresh inserted and deleted
    deleted: int | None = None
    swap_lock_seconds: float | None = None  # how long its swap held the exclusive locks

    @property
    def changed_share(self) -> float | None:
        """Rows changed over rows before and after (k updates of n rows: k/n), for a
        concurrent refresh; None when not measured (a swap rebuilds the heap whole)."""
        if self.inserted is None or self.deleted is None or self.rows is None:
            return None
        both = 2 * self.rows + self.deleted - self.inserted
        return (self.inserted + self.deleted) / both if both else 0.0

    def as_json(self) -> dict:
        return {"mart": self.mart, "status": self.status, "mode": self.mode,
                "fallback": self.fallback, "rows": self.rows, "seconds": round(self.seconds, 3),
                "error": self.error, "checks": self.checks, "reason": self.reason,
                "unchanged_since": self.unchanged_since, "note": self.note,
                "strategy": self.strategy, "strategy_reason": self.strategy_reason,
                "inserted": self.inserted, "deleted": self.deleted,
                "changed_share": (None if self.changed_share is None
                                  else round(self.changed_share, 6)),
                "swap_lock_seconds": self.swap_lock_seconds}


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
    def note(self, text: str) -> None: ...  # a word before the marts (leftover sessions)


# The columns of later project schemas are read through to_jsonb(), so that this code also
# drives an install migrated down to an earlier one (they read NULL there).
_LOG_SQL = in_project("""
SELECT mart, status, mode, rows, coalesce(duration_seconds, 0)::float8, checks, error,
       sqlstate, error_context, started_at::text, ended_at::text, reason,
       to_char(unchanged_since, 'YYYY-MM-DD HH24:MI:SS'), to_jsonb(l)->>'strategy',
       to_jsonb(l)->>'strategy_reason', (to_jsonb(l)->>'inserted')::bigint,
       (to_jsonb(l)->>'deleted')::bigint, (to_jsonb(l)->>'swap_lock_seconds')::float8
FROM {project}.run_log l WHERE run_id = %s ORDER BY position
""")


def logged(cur, run_id: str, options: Options) -> list[MartResult]:
    """Every mart of a run as its log says now, in refresh order (pending ones included)."""
    cur.execute(_LOG_SQL, (run_id,))
    version = cur.connection.server_version
    return [_result(row, options, version) for row in cur.fetchall()]


def _result(row, options: Options, server_version: int | None = None) -> MartResult:
    (mart, status, mode, rows, seconds, checks, error, sqlstate, context, started, ended,
     reason, since, strategy, strategy_reason, inserted, deleted, lock_seconds) = row
    if error and sqlstate == roles.INSUFFICIENT_PRIVILEGE:
        error = roles.explain_message(error, sqlstate, context, server_version)
    elif error:
        error = limits.explain(error, sqlstate)
    return MartResult(mart, status, mode, options.concurrently and mode == "plain", rows,
                      seconds, checks or [], error, started, ended, reason, since,
                      strategy=strategy, strategy_reason=strategy_reason, inserted=inserted,
                      deleted=deleted, swap_lock_seconds=lock_seconds)


LOCK_WAIT_NOTICE_SECONDS = 5  # how often a --wait says whom it waits for


def acquire_lock(conn, wait_seconds: float | None, notify=None) -> None:
    """Take the refresh lock, waiting up to `wait_seconds`, or say who holds it. While it
    waits, every few seconds it says for whom: through `notify(text)`, else the
    bioloupe_views.engine logger where logging is configured (Dagster), else on stderr."""
    import logging
    import sys

    logger = logging.getLogger(__name__)
    if notify is None:
        notify = logger.info if logger.hasHandlers() else (
            lambda text: print(text, file=sys.stderr, flush=True))
    started = time.monotonic()
    deadline = started + (wait_seconds or 0)
    next_notice = started
    with conn.cursor() as cur:
        while True:
            cur.execute(in_project("SELECT {project}.try_refresh_lock()"))
            if cur.fetchone()[0]:
                return
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= next_notice:
                cur.execute(in_project("SELECT message FROM {project}.refresh_lock_holder()"))
                holder = cur.fetchone()
                notify(f"waiting for the refresh lock ({now - started:.0f}s of "
                       f"{wait_seconds:g}s): {holder[0] if holder else 'another refresh holds it'}")
                next_notice = now + LOCK_WAIT_NOTICE_SECONDS
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))
        cur.execute(in_project("SELECT message FROM {project}.refresh_lock_holder()"))
        holder = cur.fetchone()
    message = holder[0] if holder else "another refresh holds the lock"
    waited = f" (waited {wait_seconds:g}s)" if wait_seconds else ""
    raise LockBusyError(f"{message}{waited}; try again later or pass --wait DURATION (e.g. 30s, 10m)")


def engine_connect(dsn: str, autocommit: bool = False):
    """A session of the run (its main session or a worker). Its backend checks every
    CLIENT_CHECK that this client is still there, even in the middle of a statement (a
    REFRESH, a lock wait, a VACUUM, a sleep): a client that dies (SIGKILL, a lost host) takes
    its backends, their transactions and their locks with it within a second or so, instead
    of leaving a worker that holds its mart's lock until its statement ends."""
    conn = connect(dsn, APPLICATION_NAME, autocommit=True)
    if conn.server_version >= 140000:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_catalog.set_config('client_connection_check_interval', %s, false)",
                        (CLIENT_CHECK,))
    conn.autocommit = autocommit
    return conn


class _Session(threading.Thread):
    """A thread driving one database session of the run; the main thread may cancel what it
    runs, or end the session from the server side."""

    def __init__(self, dsn: str, run_id: str, stop: threading.Event):
        super().__init__(daemon=True)   # never keeps the process alive past the run
        self.dsn, self.run_id, self.stop = dsn, run_id, stop
        self.conn = None
        self.pid: int | None = None
        self.failure: str | None = None

    def _connect(self):
        self.conn = engine_connect(self.dsn)
        self.pid = self.conn.get_backend_pid()
        return self.conn

    def cancel(self) -> None:
        """Cancel the statement this session is running (a refresh, a VACUUM, a wait), if any."""
        conn = self.conn
        if conn is not None and not conn.closed:
            try:
                conn.cancel()
            except psycopg2.Error:
                pass

    def run(self) -> None:
        try:
            self._work()
        except Exception as exc:  # noqa: BLE001 - reported by the driver, never lost
            self.failure = first_line(exc)
        finally:
            if self.conn is not None and not self.conn.closed:
                self.conn.close()

    def _work(self) -> None:
        raise NotImplementedError


class _Worker(_Session):
    """One session that claims and refreshes ready marts until the run has none left."""

    def __init__(self, dsn: str, run_id: str, stop: threading.Event, vacuum: bool = True,
                 lock_timeout: str | None = None, notes: dict | None = None):
        super().__init__(dsn, run_id, stop)
        self.vacuum, self.lock_timeout = vacuum, lock_timeout
        self.notes = notes if notes is not None else {}

    def _work(self) -> None:
        while not self.stop.is_set():
            if self.conn is None or self.conn.closed:
                self._connect()
            mart, state, strategy = self._claim()
            if state == "done":
                return
            if state == "wait":
                time.sleep(POLL_SECONDS)
                continue
            self._refresh(mart, strategy)

    def _claim(self) -> tuple[str | None, str, str | None]:
        with self.conn.cursor() as cur:
            cur.execute(in_project("SELECT c.mart, c.state, to_jsonb(c)->>'strategy'"
                                   " FROM {project}.claim_next(%s) c"), (self.run_id,))
            row = cur.fetchone()
        self.conn.commit()
        return row

    def _refresh(self, mart: str, strategy: str | None = "concurrent") -> None:
        # A swap builds a new heap: vacuuming the live one first would be wasted work.
        swap = strategy == "swap"
        locked = (self._vacuum(mart) if self.vacuum and not swap and not self.stop.is_set()
                  else None)
        if locked:
            self.notes[mart] = locked
        if self.stop.is_set():
            _record(self.conn, self.run_id, mart, "cancelled", STOPPED)
            return
        try:
            with self.conn.cursor() as cur:
                cur.execute(in_project("SELECT {project}.apply_run_settings(%s)"), (self.run_id,))
                if locked and self.lock_timeout is None:
                    # Another session holds a lock the refresh needs too: wait for it, but not
                    # for ever (the run's --lock-timeout, when given, is the bound instead).
                    cur.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)",
                                (LOCKED_MART_WAIT,))
                cur.execute(in_project("SELECT {project}.refresh_mart(%s, %s)"), (self.run_id, mart))
                status = cur.fetchone()[0]["status"]
            if self.stop.is_set() and status in ("success", "staged"):
                # Stopped while this mart was being checked: nothing is published after it.
                self.conn.rollback()
                _record(self.conn, self.run_id, mart, "cancelled",
                        "cancelled: the run was stopped before this mart was published")
            else:
                self.conn.commit()
                if swap and status != "staged":
                    self._clear_stages()
        except psycopg2.Error as exc:
            # The transaction is gone (rolled back by the server if the session died):
            # record why on a session that works, and go on with the next mart. A run being
            # stopped opens no new session: the main session records what is left.
            if self.conn.closed:
                if self.stop.is_set():
                    return
                self._connect()
            else:
                self.conn.rollback()
            _record(self.conn, self.run_id, mart, "error", roles.explain(exc))

    def _clear_stages(self) -> None:
        """Drop what the swap of this mart's group no longer needs: the retired marts of a
        group just published, the builds aside of one held back (each drop waits at most a
        second for a reader; what is left goes at the end of the run)."""
        try:
            with self.conn.cursor() as cur:
                cur.execute(in_project("SELECT {project}.clear_stages()"))
            self.conn.commit()
        except psycopg2.Error:
            self.conn.rollback()   # finish_run() and the next run try again

    def _vacuum(self, mart: str) -> str | None:
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
        to autovacuum. Its lock waits at most VACUUM_WAIT (long enough for an autovacuum
        in the way to yield to it): a session that holds the mart (a leftover worker of a
        dead client, a DBA's LOCK or VACUUM) never holds up the run here. Returns the line
        that says so, naming the holder, or None."""
        relation = sql.Identifier(definitions.MART_SCHEMA, mart)
        try:
            self.conn.autocommit = True
            with self.conn.cursor() as cur:
                cur.execute("SET lock_timeout = %s", (VACUUM_WAIT,))
                try:
                    cur.execute(sql.SQL("VACUUM (TRUNCATE false) {}").format(relation))
                finally:
                    cur.execute("RESET lock_timeout")
        except psycopg2.errors.LockNotAvailable:
            return sessions.vacuum_skipped(self.conn, mart)
        except psycopg2.Error:
            pass  # the mart is published and logged; autovacuum will get to it
        finally:
            if not self.conn.closed:
                self.conn.autocommit = False
        return None


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
        self.notes: dict[str, str] = {}   # a worker's word on a mart (VACUUM skipped)
        self.waits_noted: set[str] = set()  # marts whose lock wait has been named

    def lock_waits(self, cur, run_id: str) -> None:
        """Name, once per mart, the session a mart has waited LOCK_WAIT_NOTE_SECONDS for."""
        try:
            waits = sessions.lock_waits(cur, run_id, LOCK_WAIT_NOTE_SECONDS)
        except psycopg2.DatabaseError as exc:
            if isinstance(exc, psycopg2.OperationalError):
                raise    # the main session is gone: the run's driver says so
            return       # this role may not see what holds the lock: nothing to name
        for mart, line in waits.items():
            if mart not in self.waits_noted:
                self.waits_noted.add(mart)
                self.reporter.note(line)

    def update(self, cur, run_id: str) -> None:
        for result in logged(cur, run_id, self.options):
            mart, status = result.mart, result.status
            if status == "pending" or mart in self.finished:
                continue
            if mart not in self.index:
                self.index[mart] = len(self.index) + 1
                if status in ("running", "staged", "success", "error", "check_failed"):
                    self.reporter.start(self.index[mart], self.total, mart)
            if status in FINAL:
                self.finished[mart] = result
                self.finished[mart].note = self.notes.get(mart)
                self.reporter.finish(self.index[mart], self.total, self.finished[mart])


def _drive(main, run_id: str, marts: list[str], sessions: list[_Session],
           stop: threading.Event, progress: _Progress) -> None:
    """Start the sessions and report progress until they are done. On Ctrl-C, SIGTERM or
    the loss of the main session, stop them all within seconds (_stop_sessions)."""
    for session in sessions:
        session.start()
    try:
        with main.cursor() as cur:
            next_wait_check = time.monotonic() + LOCK_WAIT_NOTE_SECONDS
            while any(s.is_alive() for s in sessions):
                progress.update(cur, run_id)
                if time.monotonic() >= next_wait_check:
                    progress.lock_waits(cur, run_id)
                    next_wait_check = time.monotonic() + 1
                time.sleep(POLL_SECONDS)
            progress.update(cur, run_id)
    except BaseException:
        _stop_sessions(main, run_id, sessions, stop)
        raise
    failures = [s.failure for s in sessions if s.failure]
    if failures and len(progress.finished) < len(marts):
        with main.cursor() as cur:
            for mart in marts:
                if mart not in progress.finished:
                    cur.execute(in_project("SELECT {project}.record_result(%s, %s, 'error', %s)"),
                                (run_id, mart, f"its worker session failed: {failures[0]}"))
            progress.update(cur, run_id)


def _stop_sessions(main, run_id: str, sessions: list[_Session], stop: threading.Event) -> None:
    """Start nothing more and end what runs, whatever it waits on: cancel each session's
    statement (its transaction rolls back; refresh_mart logs a cancelled refresh), again
    every second for a session caught between statements, and end the sessions still there
    after STOP_SECONDS from the server side. Then any mart still running is logged as
    cancelled (finish_run closes the pending ones)."""
    stop.set()
    deadline = time.monotonic() + STOP_SECONDS
    next_cancel = 0.0
    while True:
        alive = [s for s in sessions if s.is_alive()]
        now = time.monotonic()
        if not alive or now >= deadline:
            break
        if now >= next_cancel:
            for session in alive:
                session.cancel()
            next_cancel = now + 1.0
        alive[0].join(0.05)
    if main.closed:
        return
    try:
        with main.cursor() as cur:
            pids = [s.pid for s in alive if s.pid]
            if pids:
                cur.execute("SELECT pg_catalog.pg_terminate_backend(p, 2000)"
                            " FROM pg_catalog.unnest(%s::int[]) p", (pids,))
            cur.execute(in_project("SELECT {project}.record_result(run_id, mart, 'cancelled', %s)"
                                   " FROM {project}.run_log WHERE run_id = %s AND status = 'running'"),
                        (STOPPED, run_id))
    except psycopg2.Error:
        pass  # the main session is gone too: the next run closes this one as abandoned


class _AtomicSession(_Session):
    """All marts in one transaction: all change together or none does."""

    def __init__(self, dsn: str, run_id: str, stop: threading.Event, marts: list[str]):
        super().__init__(dsn, run_id, stop)
        self.marts = marts

    def _work(self) -> None:
        run_id, marts = self.run_id, self.marts
        conn = self._connect()
        failed: dict | None = None
        current = None
        try:
            with conn.cursor() as cur:
                while not self.stop.is_set():
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
            if self.stop.is_set():
                conn.rollback()   # the main session logs the run as cancelled
                return
            if failed is None:
                conn.commit()
                return
            conn.rollback()
        except psycopg2.Error as exc:
            if self.stop.is_set():
                return
            failed = {"mart": current or "(commit)", "status": "error", "error": roles.explain(exc)}
            if conn.closed:
                conn = self._connect()
            else:
                conn.rollback()
        reason = f"rolled back with the --atomic run because {failed['mart']} failed"
        if failed["mart"] in marts:
            _record(conn, run_id, failed["mart"], failed["status"], failed["error"], failed)
        for mart in marts:
            if mart != failed["mart"]:
                _record(conn, run_id, mart, "skipped", reason)


def run(dsn: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
        options: Options | None = None, reporter: Reporter | None = None) -> RunResult:
    """Refresh the selected marts; the run and each mart's outcome go to the run log."""
    options, reporter = options or Options(), reporter or Reporter()
    main = engine_connect(dsn, autocommit=True)
    try:
        standby.require_primary(main, dsn)
        graph = mart_graph.load(main)
        missing_marts.require_present(main)
        marts = selection.select(graph.order, graph.upstream, include, exclude,
                                 sources=lambda: mart_graph.sources(main))
        acquire_lock(main, options.wait)
        leftovers = sessions.find(main)   # holding the lock: no other run is live now
        t0 = time.monotonic()
        with main.cursor() as cur:
            cur.execute(in_project("SELECT {project}.start_run(%s, %s, %s, %s)"),
                        (options.trigger, marts, Json(options.run_options()), options.trigger_ref))
            run_id = str(cur.fetchone()[0])
            # A swap brings along the marts that read a swapped one: the run's list is the log's.
            cur.execute(in_project("SELECT mart FROM {project}.run_log WHERE run_id = %s"
                                   " ORDER BY position"), (run_id,))
            marts = [row[0] for row in cur.fetchall()]
        progress = _Progress(marts, options, reporter)
        try:
            reporter.begin(marts, options)
            if leftovers:
                reporter.note(sessions.one_line(leftovers))
            stop = threading.Event()
            if options.atomic:
                workers = [_AtomicSession(dsn, run_id, stop, marts)]
            else:
                workers = [_Worker(dsn, run_id, stop, options.vacuum, options.lock_timeout,
                                   progress.notes)
                           for _ in range(max(1, min(options.threads, len(marts))))]
            try:
                _drive(main, run_id, marts, workers, stop, progress)
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
