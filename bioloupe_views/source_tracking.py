"""Source change tracking for `refresh-views --changed-only`: which source tables have the
change-log trigger, and the statements that add or remove it.

The sources belong to their owners, so this project only prints the statements (or applies
them for a user who owns the sources). Each tracked table gets one statement-level trigger,
AFTER INSERT, UPDATE, DELETE and TRUNCATE, ENABLE ALWAYS (so it fires for replication and
restores too), calling bioloupe_views.log_source_change(): it appends (table, the writing
transaction's id, time) to bioloupe_views.source_change in the writer's own transaction,
once per table per transaction (a transaction-local setting, named by the trigger's
argument, is its memo). The templates are in sql/_queries/track_source.sql and
untrack_source.sql.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from psycopg2 import sql

from . import contract, definitions
from .definitions import in_project
from .errors import NotMigratedError

TRIGGER = "bioloupe_views_source_change"
_QUERIES = definitions.SQL_DIR / "_queries"
_KINDS = {"p": "partitioned table", "f": "foreign table", "m": "materialized view",
          "v": "view"}


@dataclass(frozen=True)
class Source:
    schema: str
    relation: str
    kind: str
    trackable: bool
    tracked: bool
    installed: bool
    since: str | None = None      # when its tracking (re)started, as the engine last saw it

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.relation}"

    @property
    def why_untrackable(self) -> str:
        return _KINDS.get(self.kind, f"relkind {self.kind}")


def require_tracking(cur) -> None:
    """Stop, with the fix, unless the project schema has the change log (v3+)."""
    cur.execute(in_project(
        "SELECT to_regprocedure('{project_text}.log_source_change()') IS NOT NULL"))
    if not cur.fetchone()[0]:
        raise NotMigratedError("this database's bioloupe_views schema has no source change "
                               "log: run `alembic upgrade head` first")


def sources(cur) -> tuple[str, list[Source]]:
    """The source schema, and every source of the marts with its tracking state."""
    require_tracking(cur)
    schema = contract.resolve(cur, contract.configured())
    cur.execute(in_project((_QUERIES / "source_tracking.sql").read_text()),
                {"schema": schema, "contract": list(contract.tables()), "trigger": TRIGGER})
    found = [Source(*row) for row in cur.fetchall()]
    since = _since(cur)
    return schema, [dataclasses.replace(s, since=since.get((s.schema, s.relation)))
                    if s.tracked else s for s in found]


def _since(cur) -> dict[tuple[str, str], str]:
    """(schema, table) -> when its tracking started, where the project schema records it
    (v6 on). A tracked source not recorded yet gets its start at the next run."""
    cur.execute(in_project("SELECT to_regclass('{project_text}.source_tracking') IS NOT NULL"))
    if not cur.fetchone()[0]:
        return {}
    cur.execute(in_project(
        "SELECT n.nspname, c.relname, to_char(t.since, 'YYYY-MM-DD HH24:MI:SS')"
        " FROM {project}.source_tracking t JOIN pg_catalog.pg_class c ON c.oid = t.relid"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"))
    return {(schema, table): since for schema, table, since in cur.fetchall()}


def _memo_key(source: Source) -> str:
    """The trigger's transaction-local memo key: stable for the table's name, any name."""
    return hashlib.md5(f"{source.schema}.{source.relation}".encode()).hexdigest()[:16]


def track_statement(source: Source) -> sql.Composed:
    key = _memo_key(source)
    return sql.SQL((_QUERIES / "track_source.sql").read_text().strip()).format(
        trigger=sql.Identifier(TRIGGER), table=sql.Identifier(source.schema, source.relation),
        setting=sql.Literal(f"{definitions.PROJECT_SCHEMA}.changed_{key}"),
        project=sql.Identifier(definitions.PROJECT_SCHEMA))


def untrack_statement(source: Source) -> sql.Composed:
    return sql.SQL((_QUERIES / "untrack_source.sql").read_text().strip()).format(
        trigger=sql.Identifier(TRIGGER), table=sql.Identifier(source.schema, source.relation))
