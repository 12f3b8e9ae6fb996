"""The command line: `bioloupe-views <command>` and its alias `refresh-views`.

Exit codes: 0 success, 1 refresh or check failure, 2 usage or configuration error. Every
error is one line on stderr; a traceback means a bug.
"""

from __future__ import annotations

import functools
import re
import sys

import click
import psycopg2.errors

from . import checks as mart_checks
from . import graph as mart_graph
from . import refresh as mart_refresh
from . import report, roles, selection
from .config import describe, mask_text, resolve_dsn
from .db import connect
from .errors import UserError

_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


def dsn_option(func):
    return click.option("--dsn", envvar=None, default=None, metavar="DSN",
                        help="libpq URL or key=value string; overrides BIOLOUPE_DATABASE_URL "
                             "and the BIOLOUPE_DB_* variables.")(func)


def selection_options(func):
    func = click.option("--exclude", multiple=True, metavar="SELECTOR",
                        help="Leave out these marts (same syntax as --select).")(func)
    return click.option("--select", "-s", multiple=True, metavar="SELECTOR",
                        help="name, name+ (with descendants), +name (with ancestors); repeatable.")(func)


def _duration(ctx, param, value):
    if value is not None and not _DURATION.match(value.strip()):
        raise click.BadParameter(f"{value!r} is not a duration; use e.g. 500ms, 30s, 5min")
    return value


def friendly_errors(func):
    """Turn UserError into one line on stderr and its exit code; mask any password.
    A permission error from the database is a UserError too: it names the missing grant."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            try:
                return func(*args, **kwargs)
            except psycopg2.errors.InsufficientPrivilege as exc:
                raise UserError(roles.explain(exc)) from None
        except UserError as exc:
            message = str(exc)
            dsn = kwargs.get("dsn")
            if dsn:
                message = mask_text(message, dsn)
            click.echo(f"Error: {message}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bioloupe-views")
def main() -> None:
    """bioloupe-views: the bioloupe marts as PostgreSQL materialized views."""


def _refresh_command(func):
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
        click.option("--atomic", is_flag=True,
                     help="Refresh and check everything in one transaction: all or nothing."),
        click.option("--wait", type=click.FloatRange(0), default=None, metavar="SECONDS",
                     help="Wait this long for a running refresh to finish instead of exiting."),
        click.option("--lock-timeout", callback=_duration, default=None, metavar="DURATION",
                     help="PostgreSQL lock_timeout for each refresh, e.g. 30s."),
        click.option("--statement-timeout", callback=_duration, default=None, metavar="DURATION",
                     help="PostgreSQL statement_timeout for each refresh, e.g. 10min."),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
                     default=None, help="Write the run results as JSON to this file."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@friendly_errors
def _do_refresh(dsn, select, exclude, threads, concurrently, run_checks, atomic, wait,
                lock_timeout, statement_timeout, json_path):
    dsn = resolve_dsn(dsn)
    options = mart_refresh.Options(concurrently=concurrently, checks=run_checks, threads=threads,
                                   atomic=atomic, lock_timeout=lock_timeout,
                                   statement_timeout=statement_timeout, wait=wait)
    target = describe(dsn)
    outcome = mart_refresh.run(dsn, select, exclude, options, report.ConsoleReporter(target))
    report.summarize(outcome)
    if json_path:
        report.write_json(json_path, report.run_results(outcome, options, target))
    sys.exit(0 if outcome.ok else 1)


@main.command("refresh")
@_refresh_command
def refresh_command(**kwargs):
    """Refresh the marts in dependency order, audited and in parallel (= refresh-views)."""
    _do_refresh(**kwargs)


@click.command("refresh-views")
@_refresh_command
def refresh_views_command(**kwargs):
    """Refresh the marts in dependency order, audited and in parallel."""
    _do_refresh(**kwargs)


def refresh_views_main() -> None:
    refresh_views_command(prog_name="refresh-views")


@main.command("check")
@dsn_option
@selection_options
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              default=None, help="Write the check results as JSON to this file.")
@friendly_errors
def check_command(dsn, select, exclude, json_path):
    """Run the data checks (the dbt tests) against the marts as they are now."""
    dsn = resolve_dsn(dsn)
    conn = connect(dsn)
    try:
        graph = mart_graph.load(conn)
        marts = selection.select(graph.order, graph.upstream, select, exclude)
        results = mart_checks.run(conn, marts)
    finally:
        conn.close()
    for result in results:
        colour = {"pass": "green", "warn": "yellow"}.get(result["status"], "red")
        click.echo(click.style(report._check_line(result), fg=colour))
        if result["status"] in ("fail", "warn"):
            report.print_check_details(result)
    # A check that could not run is never a pass, whatever its severity.
    blocking = [r for r in results if r["blocks"] or r["status"] == "error"]
    counts = {s: sum(r["status"] == s for r in results) for s in ("pass", "warn", "fail", "error")}
    click.echo(f"\nDone. PASS={counts['pass']} WARN={counts['warn']} FAIL={counts['fail']} "
               f"ERROR={counts['error']} TOTAL={len(results)}")
    if json_path:
        report.write_json(json_path, {"target": describe(dsn), "success": not blocking,
                                      "results": results})
    sys.exit(1 if blocking else 0)


@main.command("demo")
@click.option("--scale", type=click.FloatRange(0.01, 100), default=1.0, show_default=True,
              help="Synthetic data size; 1 is about 1/60 of production.")
@click.option("--keep", is_flag=True, help="Leave the server running and print its DSN.")
@click.option("--stop", is_flag=True, help="Stop a server left running by --keep.")
@friendly_errors
def demo_command(scale, keep, stop):
    """Start a throwaway PostgreSQL, load synthetic sources, migrate, refresh and show the marts."""
    from . import demo

    if stop:
        demo.stop()
    else:
        sys.exit(demo.run(scale=scale, keep=keep))


def _register_extensions() -> None:
    """Commands that live in their own modules register themselves on `main`."""
    from . import extensions  # noqa: F401


_register_extensions()
