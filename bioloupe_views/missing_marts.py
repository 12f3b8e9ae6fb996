"""Registered marts the database no longer holds, and their restore.

A mart is registered in bioloupe_views.mart at the version a migration installed, and
every command takes the registry and the catalog to agree. A hand-made `DROP MATERIALIZED
VIEW ... CASCADE` breaks that: the mart goes (with the marts above it and the check views
that read it), its registry row stays, and the views derived from pg_depend (managed_mart,
refresh_order) simply leave it out. So every command asks `find()` first: refresh-views
(engine.run, and so Dagster), `check`, the pytest plugin, `status` and `doctor` stop on
what it returns, with one line that says how to recover.

The recovery is `alembic upgrade head` (or any upgrade or downgrade): migrations/env.py
calls `restore()` before the migrations run, so they find what their revision says, and a
downgrade can drop what it expects. Each missing mart is rebuilt from its installed version
as op.create_materialized_view builds one (binding.create_mart, its description), in
dependency order, and the checks of every mart that lost a check view are installed
again. A name that something else now holds (a table of the same name) is never dropped:
the restore stops, naming it, with nothing changed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

from . import binding, checks, definitions, roles
from .definitions import in_project
from .errors import UserError

MISSING_QUERY = definitions.SQL_DIR / "_queries" / "missing_marts.sql"
MISSING_CHECKS_QUERY = definitions.SQL_DIR / "_queries" / "missing_check_views.sql"
UPGRADE = "alembic upgrade head"
_KINDS = {"r": "table", "p": "partitioned table", "v": "view", "f": "foreign table",
          "S": "sequence", "i": "index", "I": "partitioned index", "c": "composite type"}
# Comments and string literals name no relation (as in dagster/lineage.py).
_NOT_CODE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.S)

log = logging.getLogger("bioloupe_views.missing_marts")


class MissingMartError(UserError):
    """A registered mart is not in the database: rebuild it with the migrations."""


@dataclass(frozen=True)
class Missing:
    mart: str
    version: int
    relkind: str | None    # what holds the name instead (pg_class.relkind), or None

    @property
    def taken_by(self) -> str | None:
        """"table", "view", ...: what holds the mart's name, if anything does."""
        return None if self.relkind is None else _KINDS.get(self.relkind, "relation")


def find(conn) -> list[Missing]:
    """The registered marts that are not a materialized view of the marts' schema, by name;
    none where the project schema is not installed or this role may not read its registry
    (the commands that need it say so themselves)."""
    with conn.cursor() as cur:
        return _find(cur)


def _find(cur) -> list[Missing]:
    cur.execute("SELECT pg_catalog.has_schema_privilege(n.oid, 'USAGE')"
                " AND pg_catalog.has_table_privilege(c.oid, 'SELECT')"
                " FROM pg_catalog.pg_namespace n"
                " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
                " WHERE n.nspname = %s AND c.relname = 'mart'", (definitions.PROJECT_SCHEMA,))
    readable = cur.fetchone()
    if not (readable and readable[0]):
        return []
    cur.execute(MISSING_QUERY.read_text(), {"mart_schema": definitions.MART_SCHEMA})
    return [Missing(*row) for row in cur.fetchall()]


def describe(found: list[Missing], then: str = f"run `{UPGRADE}`") -> str:
    """One line: what is missing, and what to do."""
    parts = []
    absent = [m for m in found if m.taken_by is None]
    if len(absent) == 1:
        parts.append(f"mart {absent[0].mart} is registered at version {absent[0].version} but "
                     f"missing from the database (dropped by hand?): {then} to rebuild it "
                     "from its installed version")
    elif absent:
        names = ", ".join(f"{m.mart} (v{m.version})" for m in absent)
        parts.append(f"marts {names} are registered but missing from the database (dropped by "
                     f"hand?): {then} to rebuild them from their installed versions")
    for m in found:
        if m.taken_by is not None:
            parts.append(f"mart {m.mart} is registered at version {m.version} but "
                         f"{definitions.MART_SCHEMA}.{m.mart} is a {m.taken_by}, not its "
                         f"materialized view (replaced by hand?): rename or drop that "
                         f"{m.taken_by}, then {then} to rebuild the mart from its installed "
                         "version")
    return "; ".join(parts)


def require_none(found: list[Missing]) -> None:
    """Stop with one line if anything registered is missing."""
    if found:
        raise MissingMartError(describe(found))


def require_present(conn) -> None:
    """Stop with one line if a registered mart is missing from this database."""
    require_none(find(conn))


# --- the restore, run by migrations/env.py -----------------------------------------------

def restore(conn, reader_role: str | None = None) -> list[str]:
    """Rebuild every missing mart from its installed version, in dependency order, and
    reinstall the checks of each mart that lost a check view; in the migration's
    transaction. Returns the marts rebuilt. The registry rows stay (the build time is
    recorded as the migration's, so staleness and --changed-only count from it); the
    reader role is granted by env.py at the end of the run, and the recorded refresher
    roles too."""
    with conn.cursor() as cur:
        cur.execute(in_project("SELECT to_regclass('{project_text}.mart') IS NOT NULL"))
        if not cur.fetchone()[0]:
            return []  # not installed (yet, or any more)
        found = _find(cur)
        taken = [m for m in found if m.taken_by is not None]
        if taken:
            raise MissingMartError(f"cannot migrate: {describe(taken, 'migrate again')}; "
                                   "nothing was changed")
        rebuilt = []
        for m in _build_order(found):
            _rebuild(cur, definitions.get(m.mart).version(m.version))
            rebuilt.append(m.mart)
            grants = ("" if reader_role else "; its grants went with it: pass -x reader_role="
                      "NAME (or BIOLOUPE_READER_ROLE) if an app reads it through a role")
            log.warning("rebuilt mart %s from its installed version %s: it was missing from "
                        "the database%s", m.mart, m.version, grants)
        for mart, number in _lost_checks(cur, rebuilt):
            checks.install(cur, definitions.get(mart).version(number))
            if mart not in rebuilt:
                log.warning("reinstalled the checks of mart %s: some of its check views were "
                            "missing", mart)
    return rebuilt


def _rebuild(cur, version: definitions.MartVersion) -> None:
    ident = sql.Identifier(definitions.MART_SCHEMA, version.mart)
    try:
        binding.create_mart(cur, version)
    except psycopg2.Error as exc:
        raise MissingMartError(f"cannot rebuild mart {version.mart} from its installed version "
                               f"{version.number}: {roles.explain(exc)}") from None
    if version.description:
        cur.execute(sql.SQL("COMMENT ON MATERIALIZED VIEW {} IS {}").format(
            ident, sql.Literal(version.description)))
    cur.execute(in_project("UPDATE {project}.mart SET migrated_at = now() WHERE name = %s"),
                (version.mart,))


def _build_order(found: list[Missing]) -> list[Missing]:
    """Upstream marts first: a mart reads the marts its installed version's query names."""
    names = {m.mart for m in found}
    reads = {}
    for m in found:
        query = _NOT_CODE.sub(" ", definitions.get(m.mart).version(m.version).query).lower()
        reads[m.mart] = {n for n in names - {m.mart} if re.search(rf"\b{re.escape(n)}\b", query)}
    order: list[Missing] = []
    pending = sorted(found, key=lambda m: m.mart)
    while pending:
        done = {m.mart for m in order}
        ready = [m for m in pending if reads[m.mart] <= done] or pending[:1]  # no cycle among marts
        order.append(ready[0])
        pending.remove(ready[0])
    return order


def _lost_checks(cur, rebuilt: list[str]) -> list[tuple[str, int]]:
    """The marts whose checks to install again: the rebuilt ones, and every mart with a
    check view missing (one that read a dropped mart)."""
    cur.execute(in_project("SELECT name, version FROM {project}.mart WHERE name = ANY(%s)"),
                (rebuilt,))
    result = dict(cur.fetchall())
    cur.execute(in_project("SELECT to_regclass('{project_text}.mart_check') IS NOT NULL"))
    if cur.fetchone()[0]:
        cur.execute(MISSING_CHECKS_QUERY.read_text(), {"checks_schema": definitions.CHECKS_SCHEMA})
        result.update(cur.fetchall())
    return sorted(result.items())
