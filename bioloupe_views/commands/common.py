"""What every command shares: the --dsn and selection options, duration and size
validation, and
the rule that a UserError is one line on stderr with its exit code."""

from __future__ import annotations

import functools
import re
import sys

import click
import psycopg2.errors

from .. import durations, roles
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


def duration(ctx, param, value):
    """Click callback: a PostgreSQL duration such as 500ms, 30s or 5min."""
    if value is not None and not durations.PATTERN.match(value):
        raise click.BadParameter(f"{value!r} is not a duration; use e.g. 500ms, 30s, 5min")
    return value


_SIZE = re.compile(r"^\s*(\d+)\s*(|B|kB|MB|GB)\s*$")
_UNITS = {"": 1, "B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3}


def size(ctx, param, value):
    """Click callback: a size in PostgreSQL's units (0, 512kB, 4MB, 1GB) as bytes."""
    if value is None or isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise click.BadParameter(f"{value!r} is not a size; use e.g. 0, 512kB, 4MB, 1GB")
    return int(match.group(1)) * _UNITS[match.group(2)]


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
