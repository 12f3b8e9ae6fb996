"""What every command shares: the --dsn, selection and --json options, duration and size
validation (one line and exit code 2 when the command line is parsed), and the rule that a
UserError is one line on stderr with its exit code."""

from __future__ import annotations

import contextlib
import functools
import re
import sys

import click
import psycopg2.errors

from .. import durations, roles, run_results
from ..config import DEFAULT_RUN_RESULTS, RUN_RESULTS_VAR, mask_text
from ..errors import UserError



def dsn_option(func):
    return click.option("--dsn", envvar=None, default=None, metavar="DSN",
                        help="libpq URL or key=value string; overrides BIOLOUPE_DATABASE_URL "
                             "and the BIOLOUPE_DB_* variables.")(func)


def selection_options(func):
    func = click.option("--exclude", multiple=True, metavar="SELECTOR",
                        help="Leave out these marts (same syntax as --select).")(func)
    return click.option("--select", "-s", multiple=True, metavar="SELECTOR",
                        help="dbt's grammar: name, +name, name+, 2+name, @name, globs (mv_*), "
                             "tag:NAME, source:NAME+; space or repeat for a union, a comma "
                             "intersects (docs/selecting.md).")(func)


class OptionError(click.ClickException):
    """A bad option value, found while the command line is parsed: one line, exit code 2
    (click's BadParameter would print the usage block first)."""

    exit_code = 2


def _option_name(param) -> str:
    return param.opts[0] if param is not None and param.opts else "the option"


def duration(ctx, param, value):
    """Click callback: a duration in the tool's one grammar (durations.py), kept as text."""
    if value is not None and not durations.is_duration(value):
        raise OptionError(f"{_option_name(param)} {value!r} is not a duration; "
                          f"use e.g. {durations.EXAMPLES}")
    return value


def timeout(ctx, param, value):
    """Click callback: a duration that becomes a PostgreSQL timeout setting (lock_timeout,
    statement_timeout), which cannot exceed INT_MAX milliseconds; returned in the form
    PostgreSQL takes (whole milliseconds), so a bare number means seconds here too."""
    value = duration(ctx, param, value)
    if value is not None and durations.over_setting_limit(value):
        raise OptionError(f"{_option_name(param)} {value.strip()!r} is longer than PostgreSQL's "
                          f"limit for a timeout, {durations.SETTING_MAX}; use a shorter one, "
                          "or 0 for none")
    return None if value is None else durations.setting(value)


def wait(ctx, param, value):
    """Click callback: how long to wait for something (the refresh lock), as seconds."""
    value = duration(ctx, param, value)
    if value is not None and durations.over_setting_limit(value):
        raise OptionError(f"{_option_name(param)} {value.strip()!r} is longer than the longest "
                          f"wait, {durations.SETTING_MAX}")
    return None if value is None else durations.seconds(value)


def retention(ctx, param, value):
    """Click callback: how long the run log keeps a run (an interval subtracted from now()),
    or how old something may be: refused beyond what PostgreSQL's timestamps can take."""
    value = duration(ctx, param, value)
    if value is not None and durations.over_retention_limit(value):
        raise OptionError(f"{_option_name(param)} {value.strip()!r} is longer than "
                          f"{durations.RETENTION_MAX}, the longest it can be")
    return value


_SIZE = re.compile(r"^\s*(\d+)\s*(|B|kB|MB|GB)\s*$")
_UNITS = {"": 1, "B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3}


def size(ctx, param, value):
    """Click callback: a size in PostgreSQL's units (0, 512kB, 4MB, 1GB) as bytes."""
    if value is None or isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise OptionError(f"{_option_name(param)} {value!r} is not a size; "
                          "use e.g. 0, 512kB, 4MB, 1GB")
    return int(match.group(1)) * _UNITS[match.group(2)]


def json_option(help_text: str):
    """--json PATH (also BIOLOUPE_RUN_RESULTS; default target/run_results.json), or --json -
    for stdout. The path is tried when the command line is parsed, so a run never does its
    work only to fail on writing the results. The command gets a run_results.Destination."""
    return click.option("--json", "json_path", callback=_results_destination, default=None,
                        envvar=RUN_RESULTS_VAR, metavar="PATH",
                        help=f"{help_text} (- for stdout; default {DEFAULT_RUN_RESULTS}, "
                             f"or {RUN_RESULTS_VAR}).")


def _results_destination(ctx, param, value):
    if value is not None and not value.strip():
        raise OptionError("--json '': give a file path, or - for stdout")
    try:
        return run_results.resolve(value)
    except OSError as exc:
        raise OptionError(f"--json {value}: cannot write there ({run_results.reason(exc)}); "
                          "give a writable file path, or - for stdout") from None


@contextlib.contextmanager
def human_output_for(destination: run_results.Destination | None):
    """With --json -, stdout holds the JSON alone: the report for humans goes to stderr."""
    if destination is not None and destination.stdout:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    else:
        yield


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
