"""`bioloupe-views refresh` and its alias `refresh-views`: a thin driver of the engine."""

from __future__ import annotations

import signal
import sys
import time
import uuid

import click
import psycopg2

from .. import durations, engine, report, revision, run_results, source_tracking
from ..config import describe, mask_text, resolve_dsn
from ..db import connect
from ..definitions import in_project
from ..errors import LockBusyError, UserError
from .common import (dsn_option, friendly_errors, human_output_for, json_option, retention,
                     selection_options, size, timeout, wait)


def refresh_options(func):
    options = [
        dsn_option,
        selection_options,
        click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True,
                     help="Marts refreshed at once, each on its own connection."),
        click.option("--concurrently/--no-concurrently", default=True, show_default=True,
                     help="REFRESH ... CONCURRENTLY, so readers are never blocked. "
                          "--no-concurrently takes locks that block readers."),
        click.option("--check/--no-check", "run_checks", default=True, show_default=True,
                     help="Run each mart's checks before its refresh is published."),
        click.option("--vacuum/--no-vacuum", default=True, show_default=True,
                     help="Keep each mart's size bounded: VACUUM it just before its refresh, so "
                          "that frequent refreshes do not outrun autovacuum, and rebuild its "
                          "indexes concurrently once refreshes have bloated them."),
        click.option("--compact-up-to", callback=size, default="4MB", show_default=True,
                     metavar="SIZE",
                     help="With --vacuum, also rewrite (VACUUM FULL) a mart up to this size, "
                          "heap and indexes, once its heap is over 1.4x a fresh build: its "
                          "readers wait for the rewrite, some 20 ms a MB. Never while a "
                          "physical standby is attached. 0 turns it off."),
        click.option("--changed-only", is_flag=True,
                     help="Refresh only the marts whose tracked sources (or upstream marts) "
                          "changed since their last refresh; the others are reported unchanged. "
                          "See `bioloupe-views track-sources`."),
        click.option("--atomic", is_flag=True,
                     help="Refresh and check everything in one transaction: all or nothing."),
        click.option("--strategy", type=click.Choice(["concurrent", "swap", "auto"]),
                     default="concurrent", show_default=True, envvar="BIOLOUPE_STRATEGY",
                     help="How each mart is published: REFRESH ... CONCURRENTLY; or built "
                          "aside, checked there and swapped in with the marts that read it "
                          "(swap); or chosen per mart from the share of rows its last refresh "
                          "changed (auto). Also BIOLOUPE_STRATEGY. See docs/strategies.md."),
        click.option("--wait", callback=wait, default=None, metavar="DURATION",
                     help="Wait this long for a running refresh to finish instead of exiting, "
                          "e.g. 30s, 10m (a bare number is seconds)."),
        click.option("--lock-timeout", callback=timeout, default=None, metavar="DURATION",
                     help="PostgreSQL lock_timeout for each refresh, e.g. 30s (a bare number "
                          "is seconds)."),
        click.option("--statement-timeout", callback=timeout, default=None, metavar="DURATION",
                     help="PostgreSQL statement_timeout for each refresh, e.g. 10m, 1h30m (a "
                          "bare number is seconds)."),
        json_option("Where the run results go, as JSON, however the run ends"),
        click.option("--log-retention", callback=retention, default="90d", show_default=True,
                     metavar="DURATION", envvar="BIOLOUPE_LOG_RETENTION",
                     help="Runs older than this are deleted from the run log by each run, "
                          "e.g. 90d (also BIOLOUPE_LOG_RETENTION)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: stop starting marts, cancel the running ones, close."""


def _terminated(signum, frame):
    raise Terminated()


# An exit code a signal gives, and the signal's name.
SIGNAL_EXITS = {130: "SIGINT", 143: "SIGTERM"}


@friendly_errors
def refresh(dsn, json_path, **kwargs):
    """Run, and write the run results whichever way the run ends."""
    results = RunResults(json_path, dsn)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        try:
            with human_output_for(json_path):
                outcome = _run(results, dsn, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except LockBusyError as exc:
        results.write("skipped", f"skipped: {exc}", lock_holder=results.lock_holder())
        raise
    except KeyboardInterrupt as exc:
        name, code = ("SIGTERM", 143) if isinstance(exc, Terminated) else ("SIGINT", 130)
        _stopped(results, name, code)
    except SystemExit as exc:   # a signal the engine turned into an exit
        if exc.code not in SIGNAL_EXITS:
            results.write("error", f"error: exited with code {exc.code}")
            raise
        _stopped(results, SIGNAL_EXITS[exc.code], exc.code)
    except BaseException as exc:
        results.write("error", f"error: {exc}")
        raise
    results.write("success" if outcome.ok else "error", None, outcome)
    sys.exit(0 if outcome.ok else 1)


def _stopped(results: "RunResults", name: str, code: int) -> None:
    results.write("cancelled", f"cancelled: stopped by {name}")
    click.echo(f"Error: stopped by {name}: the marts being refreshed were cancelled and "
               "rolled back (readers keep their last good data), the run is closed in the "
               "run log and the refresh lock released; run again to finish", err=True)
    sys.exit(code)


def _run(results: "RunResults", dsn, select, exclude, threads, concurrently, run_checks, vacuum,
         compact_up_to, changed_only, atomic, wait, lock_timeout, statement_timeout,
         log_retention, strategy="concurrent") -> engine.RunResult:
    if changed_only and atomic:
        raise UserError("--changed-only cannot be combined with --atomic: an atomic run "
                        "refreshes everything it selects in one transaction; drop one of them")
    if atomic and strategy != "concurrent":
        raise UserError(f"--atomic cannot be combined with --strategy {strategy}: an atomic run "
                        "publishes every mart in one transaction; use --strategy concurrent")
    results.dsn = dsn = resolve_dsn(dsn)
    revision.warn_for(dsn)  # a database behind (or ahead of) the code's migrations
    results.target = describe(dsn)
    results.options = options = engine.Options(
        concurrently=concurrently, checks=run_checks, vacuum=vacuum,
        compact_up_to=compact_up_to, threads=threads, atomic=atomic, lock_timeout=lock_timeout,
        statement_timeout=statement_timeout, wait=wait,
        retention=durations.interval(log_retention), changed_only=changed_only,
        strategy=strategy,
        trigger_ref=results.invocation_id)
    results.reporter = report.ConsoleReporter(results.target)
    outcome = engine.run(dsn, select, exclude, options, results.reporter)
    report.summarize(outcome, nothing_tracked=changed_only and not _any_source_tracked(dsn))
    return outcome


def _any_source_tracked(dsn: str) -> bool:
    """Whether --changed-only has any change log to read; True when that cannot be told
    (then the report says nothing about it)."""
    try:
        conn = connect(dsn)
    except UserError:
        return True
    try:
        with conn.cursor() as cur:
            return any(s.tracked for s in source_tracking.sources(cur)[1])
    except (UserError, psycopg2.Error):
        return True
    finally:
        conn.close()


class RunResults:
    """What this invocation knows of its run, for the run results however it ends. The CLI
    run's trigger_ref is its invocation id: after a signal, it finds the run's id."""

    def __init__(self, destination, dsn: str | None):
        self.destination, self.dsn = destination, dsn
        self.invocation_id = str(uuid.uuid4())
        self.started = time.monotonic()
        self.target = "?"
        self.options: engine.Options | None = None
        self.reporter: report.ConsoleReporter | None = None

    def write(self, status: str, message: str | None, outcome: engine.RunResult | None = None,
              lock_holder: dict | None = None) -> None:
        command = click.get_current_context(silent=True)
        meta = run_results.metadata(command.info_name if command else "refresh",
                                    self.target, self.invocation_id)
        if message and self.dsn:
            message = mask_text(message, self.dsn)
        if outcome is not None:
            payload = run_results.refresh_results(meta, status, message, outcome.run_id,
                                                  outcome.seconds, self.options,
                                                  outcome.results, outcome)
        else:
            run_id, logged = self._logged() if status == "cancelled" else (None, {})
            payload = run_results.refresh_results(
                meta, status, message, run_id, time.monotonic() - self.started, self.options,
                self._results(status, logged), lock_holder=lock_holder)
        run_results.write(self.destination, payload)

    def _results(self, status: str, logged: dict) -> list[engine.MartResult]:
        """What finished, in refresh order. After a signal, every selected mart: as the run
        log has it (a mart may have finished since the report last looked), else as the
        report saw it, else cancelled."""
        if self.reporter is None:
            return []
        done = {**self.reporter.finished, **logged}
        if status != "cancelled":
            return [done[m] for m in self.reporter.marts if m in done]
        return [done.get(m) or engine.MartResult(m, "cancelled", error=engine.STOPPED)
                for m in self.reporter.marts]

    def _ask(self, question):
        """question(cursor) on a session of its own, or None: the run results are written
        even when the database cannot be asked."""
        if self.dsn is None:   # not resolved: there is no database to ask
            return None
        try:
            conn = connect(self.dsn)
        except Exception:  # noqa: BLE001 - the results are written without it
            return None
        try:
            with conn.cursor() as cur:
                return question(cur)
        except Exception:  # noqa: BLE001
            return None
        finally:
            conn.close()

    def _logged(self) -> tuple[str | None, dict[str, engine.MartResult]]:
        """This invocation's run (its trigger_ref) and its marts' final results."""
        def question(cur):
            cur.execute(in_project("SELECT run_id::text FROM {project}.run WHERE trigger_ref = %s"),
                        (self.invocation_id,))
            row = cur.fetchone()
            if not row:
                return None, {}
            return row[0], {r.mart: r for r in engine.logged(cur, row[0], self.options)
                            if r.status in engine.FINAL}

        return self._ask(question) or (None, {})

    def lock_holder(self) -> dict | None:
        """Who holds the refresh lock, if it is still held: the run that was not skipped."""
        def question(cur):
            cur.execute(in_project("SELECT pid, application_name, trigger, run_id::text, since"
                                   " FROM {project}.refresh_lock_holder()"))
            return cur.fetchone()

        row = self._ask(question)
        if not row:
            return None
        return dict(zip(("pid", "application_name", "trigger", "run_id", "since"), row))


@click.command("refresh")
@refresh_options
def refresh_command(**kwargs):
    """Refresh the marts in dependency order, audited and in parallel (= refresh-views)."""
    refresh(**kwargs)


@click.command("refresh-views")
@refresh_options
def refresh_views_command(**kwargs):
    """Refresh the marts in dependency order, audited and in parallel."""
    refresh(**kwargs)
