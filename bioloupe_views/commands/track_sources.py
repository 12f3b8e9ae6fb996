"""`bioloupe-views track-sources`: print (or, with --apply, run) the statements that add the
change-log trigger to each source table, which `refresh-views --changed-only` needs to know
that a mart's inputs did not change; --remove takes them off again. The sources belong to
their owners: by default nothing is changed, the statements are printed for them to run."""

from __future__ import annotations

import click
import psycopg2

from .. import source_tracking, standby
from ..config import describe, resolve_dsn
from ..db import connect, first_line, require_migrated
from ..errors import UserError
from .common import dsn_option, friendly_errors


@click.command("track-sources")
@dsn_option
@click.option("--apply", is_flag=True,
              help="Run the statements (as a user who owns the source tables) instead of "
                   "printing them.")
@click.option("--remove", is_flag=True, help="Remove the triggers instead of adding them.")
@friendly_errors
def track_sources_command(dsn, apply, remove):
    """Log writes to the source tables so that `refresh-views --changed-only` can skip the
    marts whose inputs did not change. Prints the SQL; --apply runs it."""
    dsn = resolve_dsn(dsn)
    conn = connect(dsn)
    try:
        if apply:
            standby.require_primary(conn, dsn)
        require_migrated(conn)
        with conn.cursor() as cur:
            schema, found = source_tracking.sources(cur)
        if not any(s.trackable for s in found):
            raise UserError(f"no source tables found in schema {schema} on {describe(dsn)}: "
                            "point the DSN at the bioloupe database or set "
                            "BIOLOUPE_SOURCE_SCHEMA to the sources' schema")
        if remove:
            todo = [s for s in found if s.installed]
            statements = [source_tracking.untrack_statement(s) for s in todo]
        else:
            todo = [s for s in found if s.trackable and not s.tracked]
            statements = [source_tracking.track_statement(s) for s in todo]
        texts = [st.as_string(conn) for st in statements]
        if apply:
            _apply(conn, todo, texts)
    finally:
        conn.close()
    verb = "untrack" if remove else "track"
    for source in found:
        if not source.trackable and not remove:
            click.echo(f"-- {source.label} cannot be tracked ({source.why_untrackable}): "
                       "marts that read it are always refreshed by --changed-only")
    if not todo:
        click.echo(f"Nothing to {verb}: {'no source has the trigger' if remove else 'every source table is tracked'} "
                   f"(schema {schema}).")
        return
    if apply:
        done = "Removed the change-log trigger from" if remove else "Tracking"
        click.echo(f"{done} {len(todo)} source table{'s' if len(todo) != 1 else ''}: "
                   f"{', '.join(s.label for s in todo)}.")
        return
    click.echo(f"-- {len(todo)} source table{'s' if len(todo) != 1 else ''} to {verb} in schema "
               f"{schema}. The sources are yours, so nothing was changed: run this as their "
               "owner (or pass --apply).")
    for text in texts:
        click.echo(text)


def _apply(conn, todo, texts) -> None:
    """Each table's statements in one transaction, all tables in one: all or nothing."""
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            for source, text in zip(todo, texts):
                try:
                    cur.execute(text)
                except psycopg2.Error as exc:
                    conn.rollback()
                    raise UserError(f"cannot change the trigger on {source.label} "
                                    f"({first_line(exc)}): nothing was changed; run the printed "
                                    "statements (without --apply) as the tables' owner") from None
        conn.commit()
    finally:
        conn.autocommit = True
