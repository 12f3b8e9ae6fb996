"""`bioloupe-views refresh` and its alias `refresh-views`: a thin driver of the engine."""

from __future__ import annotations

import signal
import sys

import click

from .. import durations, engine, report
from ..config import describe, resolve_dsn
from ..errors import UserError
from .common import (dsn_option, friendly_errors, human_output_for, json_option, retention,
                     selection_options, size, timeout, write_json)


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
        click.option("--wait", type=click.FloatRange(0), default=None, metavar="SECONDS",
                     help="Wait this long for a running refresh to finish instead of exiting."),
        click.option("--lock-timeout", callback=timeout, default=None, metavar="DURATION",
                     help="PostgreSQL lock_timeout for each refresh, e.g. 30s."),
        click.option("--statement-timeout", callback=timeout, default=None, metavar="DURATION",
                     help="PostgreSQL statement_timeout for each refresh, e.g. 10min."),
        json_option("Write the run results as JSON to this file"),
        click.option("--log-retention", callback=retention, default="90d", show_default=True,
                     metavar="DURATION", envvar="BIOLOUPE_LOG_RETENTION",
                     help="Runs older than this are deleted from the run log by each run "
                          "(also BIOLOUPE_LOG_RETENTION)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: stop starting marts, cancel the running ones, close."""


def _terminated(signum, frame):
    raise Terminated()


@friendly_errors
def refresh(dsn, select, exclude, threads, concurrently, run_checks, vacuum, compact_up_to,
            changed_only, atomic, wait, lock_timeout, statement_timeout, json_path, log_retention):
    if changed_only and atomic:
        raise UserError("--changed-only cannot be combined with --atomic: an atomic run "
                        "refreshes everything it selects in one transaction; drop one of them")
    dsn = resolve_dsn(dsn)
    options = engine.Options(concurrently=concurrently, checks=run_checks, vacuum=vacuum,
                             compact_up_to=compact_up_to, threads=threads,
                             atomic=atomic, lock_timeout=lock_timeout,
                             statement_timeout=statement_timeout, wait=wait,
                             retention=durations.interval(log_retention),
                             changed_only=changed_only)
    target = describe(dsn)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        with human_output_for(json_path):
            outcome = engine.run(dsn, select, exclude, options, report.ConsoleReporter(target))
            report.summarize(outcome)
    except KeyboardInterrupt as exc:
        name, code = ("SIGTERM", 143) if isinstance(exc, Terminated) else ("SIGINT", 130)
        click.echo(f"Error: stopped by {name}: the marts being refreshed were cancelled and "
                   "rolled back (readers keep their last good data), the run is closed in the "
                   "run log and the refresh lock released; run again to finish", err=True)
        sys.exit(code)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if json_path:
        write_json(json_path, report.run_results(outcome, options, target))
    sys.exit(0 if outcome.ok else 1)


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
