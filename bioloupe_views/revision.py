"""Whether the database's migrations match the code's: one line for status, doctor and
refresh-views when they do not.

A database behind the code runs the previous release's marts and routines (a pending
migration changes them), and one ahead of it was migrated by a newer release this code does
not know; either way the operator should hear it before reading the marts' state or
refreshing them. The database's revision is Alembic's version table
(public.bioloupe_views_alembic_version, migrations/env.py); the code's head comes from the
revision scripts in migrations/. When either is unknown (no version table: not migrated;
an installation without migrations/), nothing is said: the commands report those
themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
import psycopg2

from . import migrate
from .db import connect
from .errors import UserError

VERSION_TABLE = "public.bioloupe_views_alembic_version"


@dataclass(frozen=True)
class Revisions:
    database: str
    head: str
    known: bool  # whether the code has the database's revision (else it is ahead)

    @property
    def note(self) -> str | None:
        if self.database == self.head:
            return None
        if self.known:
            return (f"note: the database is at revision {self.database}, the code's head is "
                    f"{self.head}: run `alembic upgrade head`")
        return (f"note: the database is at revision {self.database}, which this code does not "
                f"know (its head is {self.head}): a newer release migrated it; use that release")


def _script():
    from alembic.script import ScriptDirectory

    try:
        return ScriptDirectory.from_config(migrate.alembic_config(""))
    except Exception:  # no migrations/ beside the package: an installation without them
        return None


def database_revision(conn) -> str | None:
    with conn.cursor() as cur:
        # A role that may not read the version table (a reader, the refresher) gets no line.
        cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL"
                    " AND pg_catalog.has_table_privilege(pg_catalog.to_regclass(%s), 'SELECT')",
                    (VERSION_TABLE, VERSION_TABLE))
        if not cur.fetchone()[0]:
            return None
        cur.execute(f"SELECT version_num FROM {VERSION_TABLE}")
        rows = [r[0] for r in cur.fetchall()]
    return rows[0] if len(rows) == 1 else None


def compare(conn) -> Revisions | None:
    """The database's revision against the code's head, or None when either is unknown."""
    script = _script()
    current = database_revision(conn)
    if script is None or current is None:
        return None
    head = script.get_current_head()
    if head is None:
        return None
    try:
        known = script.get_revision(current) is not None
    except Exception:  # alembic raises for a revision it does not have
        known = False
    return Revisions(current, head, known)


def note(conn) -> str | None:
    """The one line to print, or None when the database is at the code's head."""
    found = compare(conn)
    return found.note if found else None


def warn(conn) -> None:
    """Print the line on stderr (stdout stays the command's report or JSON)."""
    line = note(conn)
    if line:
        click.echo(line, err=True)


def warn_for(dsn: str) -> None:
    """The same on a connection of its own, for a command that connects later (refresh-views).
    Silent if the database cannot be read: the command's own connection says why."""
    try:
        conn = connect(dsn)
    except UserError:
        return
    try:
        warn(conn)
    except psycopg2.Error:
        return
    finally:
        conn.close()
