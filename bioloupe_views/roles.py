"""Roles and privileges: the app's read-only role, and what a permission error means.

The reader role is configured per migration run, `alembic -x reader_role=bioloupe_app ...`
or BIOLOUPE_READER_ROLE (the -x argument wins). The migrations grant it SELECT on each mart
and nothing else: not the sources, not the bioloupe_views schema, and never ownership, so
it can read the marts but cannot refresh, alter or drop them. The marts live in `public`,
whose USAGE PostgreSQL grants to PUBLIC by default; a database that revoked it must grant
USAGE ON SCHEMA public itself. Grants belong to the view, so a REFRESH keeps them.

The refresh needs more than SELECT (see README, "Roles and privileges"): REFRESH on
PostgreSQL 15/16 is allowed only to the view's owner or a member of the owning role
(PostgreSQL 17 adds the MAINTAIN privilege), and the run log needs USAGE on schema
bioloupe_views and SELECT, INSERT, UPDATE on its tables. `explain()` turns PostgreSQL's
"permission denied" (SQLSTATE 42501) into one line that names the missing grant.
"""

from __future__ import annotations

import os
import re

from psycopg2 import sql

from . import definitions
from .errors import ConfigError

READER_ROLE_VAR = "BIOLOUPE_READER_ROLE"
X_ARGUMENT = "reader_role"
CONTEXT_OPTION = "bioloupe_reader_role"   # key in Alembic's MigrationContext.opts
INSUFFICIENT_PRIVILEGE = "42501"


def configured(x_arguments: dict, environ: dict | None = None) -> str | None:
    """The reader role asked for: `-x reader_role=...`, else BIOLOUPE_READER_ROLE, else None."""
    env = os.environ if environ is None else environ
    role = (x_arguments.get(X_ARGUMENT) or env.get(READER_ROLE_VAR) or "").strip()
    return role or None


def validate(conn, role: str) -> None:
    """Stop before migrating if the role does not exist, saying how to create it."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if cur.fetchone():
            return
    create = sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)).as_string(conn)
    raise ConfigError(f"the reader role {role!r} does not exist: create it first ({create};) "
                      f"or fix -x {X_ARGUMENT} / {READER_ROLE_VAR}")


def grant_select(mart: str, role: str) -> sql.Composed:
    """GRANT SELECT on one mart to the role: the only privilege the reader gets."""
    return sql.SQL("GRANT SELECT ON {}.{} TO {}").format(
        sql.Identifier(definitions.MART_SCHEMA), sql.Identifier(mart), sql.Identifier(role))


def grant_all(conn, role: str) -> list[str]:
    """Grant SELECT on every managed mart (idempotent), so configuring the role on a
    database already at head takes effect on the next `alembic upgrade head`."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('bioloupe_views.managed_mart') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        cur.execute("SELECT name FROM bioloupe_views.managed_mart ORDER BY name")
        marts = [r[0] for r in cur.fetchall()]
        for mart in marts:
            cur.execute(grant_select(mart, role))
    return marts


# --- permission errors -----------------------------------------------------------------

_ADMIN = "or connect as the role that ran the migrations (see README: Roles and privileges)"
_HINTS = [
    (re.compile(r"must be owner of materialized view (\S+)"),
     "on PostgreSQL 15 and 16 only the owner of {0} or a member of the owning role may REFRESH "
     "it: run the refresh as the role that ran the migrations, or GRANT that role to this one "
     "(PostgreSQL 17+: GRANT MAINTAIN ON {0})"),
    (re.compile(r"must be owner of (?:table|relation) (\S+)"),
     "only the owner of {0} may do this: " + _ADMIN),
    (re.compile(r"permission denied for schema (bioloupe_views)\b"),
     "GRANT USAGE ON SCHEMA bioloupe_views, and SELECT, INSERT, UPDATE ON ALL TABLES IN "
     "SCHEMA bioloupe_views, to this role, " + _ADMIN),
    (re.compile(r"permission denied for table (run|run_log|mart_check|mart)\b"),
     "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA bioloupe_views TO this role, " + _ADMIN),
    (re.compile(r"permission denied for (?:table|materialized view|view) (\S+)"),
     "GRANT SELECT ON {0} TO this role, " + _ADMIN),
    (re.compile(r"permission denied for schema (\S+)"),
     "GRANT USAGE (and CREATE, for migrations) ON SCHEMA {0} TO this role, " + _ADMIN),
    (re.compile(r"permission denied for database (\S+)"),
     "the migrations create schema bioloupe_views: GRANT CREATE ON DATABASE {0} TO this role, "
     + _ADMIN),
]


def explain(exc: BaseException) -> str:
    """One line for a database error: PostgreSQL's own first line, plus the grant to ask for
    when it is a permission error."""
    text = str(exc).strip()
    return explain_message(text.splitlines()[0] if text else type(exc).__name__,
                           getattr(exc, "pgcode", None))


def explain_message(message: str, sqlstate: str | None) -> str:
    """The same, for an error the engine recorded as its message and SQLSTATE."""
    line = re.sub(r"^ERROR:\s+", "", message)
    if sqlstate != INSUFFICIENT_PRIVILEGE:
        return line
    for pattern, hint in _HINTS:
        match = pattern.search(line)
        if match:
            return f"{line}: {hint.format(*match.groups())}"
    return f"{line}: ask for the missing privilege, {_ADMIN}"
