"""What every command shares: the --dsn, selection and --json options, duration and size
validation (one line and exit code 2 when the command line is parsed), and the rule that a
UserError is one line on stderr with its exit code."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import re
import sys
from pathlib import Path

import click
import psycopg2.errors

from .. import durations, report, roles
from ..config import mask_text
from ..errors import UserError



def dsn_option(func):
    return click.option("--dsn", envvar=None, default=None, metavar="DSN",
                        help="libpq URL or key=value string; overrides BIOLOUPE_DATABASE_URL "
                             "and the BIOLOUPE_DB_* variables.")(func)


def selection_options(func):
    func = click.option("--exclude", multiple=True, metavar="SELECTOR",
                        help="Leave out these marts (same syntax as --select).")(func)
    return click.option("--select", "-s", multiple=True, metavar="SELECTOR",
                        help="name, name+ (with descendants), +name (with ancestors); repeatable.")(func)


class OptionError(click.ClickException):
    """A bad option value, found while the command line is parsed: one line, exit code 2
    (click's BadParameter would print the usage block first)."""

    exit_code = 2


def _option_name(param) -> str:
    return param.opts[0] if param is not None and param.opts else "the option"


def duration(ctx, param, value):
    """Click callback: a PostgreSQL duration such as 500ms, 30s or 5min."""
    if value is not None and not durations.PATTERN.match(value):
        raise OptionError(f"{_option_name(param)} {value!r} is not a duration; "
                          "use e.g. 500ms, 30s, 5min")
    return value


def timeout(ctx, param, value):
    """Click callback: a duration that becomes a PostgreSQL timeout setting (lock_timeout,
    statement_timeout), which cannot exceed INT_MAX milliseconds."""
    value = duration(ctx, param, value)
    if value is not None and durations.over_setting_limit(value):
        raise OptionError(f"{_option_name(param)} {value.strip()!r} is longer than PostgreSQL's "
                          f"limit for a timeout, {durations.SETTING_MAX}; use a shorter one, "
                          "or 0 for none")
    return value


def retention(ctx, param, value):
    """Click callback: how long the run log keeps a run (an interval subtracted from now())."""
    value = duration(ctx, param, value)
    if value is not None and durations.over_retention_limit(value):
        raise OptionError(f"{_option_name(param)} {value.strip()!r} is longer than the longest "
                          f"retention, {durations.RETENTION_MAX}")
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
    """--json PATH, or --json - for stdout. The path is tried when the command line is
    parsed, so a run never does its work only to fail on writing the results."""
    return click.option("--json", "json_path", callback=_writable_json_path, default=None,
                        metavar="PATH", help=f"{help_text} (- for stdout).")


def _writable_json_path(ctx, param, value):
    if value is None or value == "-":
        return value
    path = Path(value)
    existed = path.exists()
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        with open(path, "a"):   # opens as the write will; appends nothing, keeps contents
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OptionError(f"--json {value}: cannot write there ({reason.lower()}); "
                          "give a writable file path, or - for stdout") from None
    if not existed:
        path.unlink(missing_ok=True)
    return value


def write_json(json_path: str, payload: dict) -> None:
    """The results to the --json path, or to stdout for -."""
    if json_path == "-":
        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        report.write_json(json_path, payload)


@contextlib.contextmanager
def human_output_for(json_path: str | None):
    """With --json -, stdout holds the JSON alone: the report for humans goes to stderr."""
    if json_path == "-":
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
