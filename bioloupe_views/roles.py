"""Roles and privileges: the app's read-only role, and what a permission error means.

The reader role is configured per migration run, `alembic -x reader_role=bioloupe_app ...`
or BIOLOUPE_READER_ROLE (the -x argument wins). The migrations grant it SELECT on each mart
and nothing else: not the sources, not the bioloupe_views schema, and never ownership, so
it can read the marts but cannot refresh, alter or drop them. The marts live in `public`,
whose USAGE PostgreSQL grants to PUBLIC by default; a database that revoked it must grant
USAGE ON SCHEMA public itself. Grants belong to the view, so a REFRESH keeps them.

The refresh needs more than SELECT (see docs/roles.md): REFRESH on
PostgreSQL 15/16 is allowed only to the view's owner or a member of the owning role
(PostgreSQL 17 adds the MAINTAIN privilege), and the run log needs USAGE on schema
bioloupe_views and SELECT, INSERT, UPDATE on its tables. `explain()` turns PostgreSQL's
"permission denied" (SQLSTATE 42501) into one line that names the missing grant.

The same missing right reads differently by version: a non-owner's REFRESH fails with "must be
owner of materialized view X" on 15/16 but "permission denied for materialized view X" on 17+,
which is also what a SELECT without the privilege says. So `explain()` looks at the statement
(the error's CONTEXT, or the cursor's query) and the server version of the error's connection:
REFRESH on 17+ asks for MAINTAIN, a read asks for SELECT, and when it cannot tell it names both.
"""

from __future__ import annotations

import os
import re

from psycopg2 import sql

from . import definitions
from .errors import ConfigError
from .definitions import in_project

READER_ROLE_VAR = "BIOLOUPE_READER_ROLE"
X_ARGUMENT = "reader_role"
REFRESHER_ROLE_VAR = "BIOLOUPE_REFRESHER_ROLE"
REFRESHER_X_ARGUMENT = "refresher_role"
CONTEXT_OPTION = "bioloupe_reader_role"   # key in Alembic's MigrationContext.opts
INSUFFICIENT_PRIVILEGE = "42501"


def configured(x_arguments: dict, environ: dict | None = None,
               x_argument: str = X_ARGUMENT, variable: str = READER_ROLE_VAR) -> str | None:
    """The role asked for: `-x reader_role=...`, else BIOLOUPE_READER_ROLE, else None (or
    the refresher's `-x refresher_role` / BIOLOUPE_REFRESHER_ROLE)."""
    env = os.environ if environ is None else environ
    role = (x_arguments.get(x_argument) or env.get(variable) or "").strip()
    return role or None


def configured_refresher(x_arguments: dict, environ: dict | None = None) -> str | None:
    return configured(x_arguments, environ, REFRESHER_X_ARGUMENT, REFRESHER_ROLE_VAR)


def validate(conn, role: str, x_argument: str = X_ARGUMENT,
             variable: str = READER_ROLE_VAR) -> None:
    """Stop before migrating if the role does not exist, saying how to create it."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if cur.fetchone():
            return
    kind = x_argument.split("_")[0]
    create = sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)).as_string(conn)
    raise ConfigError(f"the {kind} role {role!r} does not exist: create it first ({create};) "
                      f"or fix -x {x_argument} / {variable}")


def grant_refresher(cur, role: str) -> None:
    """What the refresher role may do, and no more: run the engine's routines (which refresh
    through the owner's refresh_view()), read the registry, the marts and the check views,
    and write the run log. It owns nothing, so it cannot change a mart, a check or a
    routine. Recorded, so later migrations that recreate routines grant them again."""
    ident = sql.Identifier(role)
    project, checks_schema = (sql.Identifier(definitions.PROJECT_SCHEMA),
                              sql.Identifier(definitions.CHECKS_SCHEMA))
    for statement in (
            "GRANT USAGE ON SCHEMA {project}, {checks} TO {role}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA {project} TO {role}",
            "GRANT INSERT, UPDATE, DELETE ON {project}.run, {project}.run_log TO {role}",
            "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {project} TO {role}",
            "GRANT EXECUTE ON ALL ROUTINES IN SCHEMA {project} TO {role}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA {checks} TO {role}"):
        cur.execute(sql.SQL(statement).format(project=project, checks=checks_schema, role=ident))
    cur.execute(in_project("SELECT name FROM {project}.managed_mart"))
    for (mart,) in cur.fetchall():
        cur.execute(grant_select(mart, role))
    cur.execute(in_project("INSERT INTO {project}.refresher_role (role) VALUES (%s)"
                           " ON CONFLICT DO NOTHING"), (role,))


def regrant_refreshers(cur) -> list[str]:
    """Grant the recorded refresher roles their rights on what exists now."""
    cur.execute(in_project("SELECT to_regclass('{project_text}.refresher_role') IS NOT NULL"))
    if not cur.fetchone()[0]:
        return []
    cur.execute(in_project("SELECT r.role FROM {project}.refresher_role r"
                           " JOIN pg_roles p ON p.rolname = r.role ORDER BY 1"))
    found = [role for (role,) in cur.fetchall()]
    for role in found:
        grant_refresher(cur, role)
    return found


def grant_select(mart: str, role: str) -> sql.Composed:
    """GRANT SELECT on one mart to the role: the only privilege the reader gets."""
    return sql.SQL("GRANT SELECT ON {}.{} TO {}").format(
        sql.Identifier(definitions.MART_SCHEMA), sql.Identifier(mart), sql.Identifier(role))


def grant_all(conn, role: str) -> list[str]:
    """Grant SELECT on every managed mart (idempotent), so configuring the role on a
    database already at head takes effect on the next `alembic upgrade head`."""
    with conn.cursor() as cur:
        cur.execute(in_project("SELECT to_regclass('{project_text}.managed_mart') IS NOT NULL"))
        if not cur.fetchone()[0]:
            return []
        cur.execute(in_project("SELECT name FROM {project}.managed_mart ORDER BY name"))
        marts = [r[0] for r in cur.fetchall()]
        for mart in marts:
            cur.execute(grant_select(mart, role))
    return marts


# --- permission errors -----------------------------------------------------------------

_ADMIN = "or connect as the role that ran the migrations (see docs/roles.md)"
_REFRESH_15 = ("on PostgreSQL 15 and 16 only the owner of {0} or a member of the owning role may "
               "REFRESH it: run the refresh as the role that ran the migrations, or GRANT that role "
               "to this one (PostgreSQL 17+: GRANT MAINTAIN ON {0})")
_REFRESH_17 = ("REFRESH needs the MAINTAIN privilege on PostgreSQL 17+: GRANT MAINTAIN ON {0} TO "
               "this role, or GRANT the owning role to it, or run the refresh as the role that ran "
               "the migrations")
_OWNER = ("only the owner of {0} (or a member of the owning role) may do this: connect as the "
          "role that ran the migrations (see docs/roles.md)")
_SELECT = "GRANT SELECT ON {0} TO this role, " + _ADMIN
_SELECT_OR_MAINTAIN = ("GRANT SELECT ON {0} TO this role to read it; to REFRESH it on PostgreSQL "
                       "17+, GRANT MAINTAIN ON {0} (or the owning role) to it, " + _ADMIN)
_REFRESHER = ("only the owner of the bioloupe_views schema and the refresher role may use {0}: "
              "as the owner, run `alembic -x refresher_role=<this role> upgrade head` to make "
              "this role the refresher (docs/security.md), " + _ADMIN)
_HINTS = [
    (re.compile(r"must be owner of materialized view (\S+)"), None),        # see _matview_hint
    (re.compile(r"must be owner of (?:table|relation) (\S+)"), _OWNER),
    (re.compile(r"permission denied for (?:function|procedure) (\S+)"), _REFRESHER),
    (re.compile(r"permission denied for schema (bioloupe_views(?:_checks)?)\b"), _REFRESHER),
    (re.compile(r"permission denied for (?:table|view) (run|run_log|mart_check|mart|"
                r"refresher_role|refresh_order|mart_dependency|managed_mart|mart_reads)\b"),
     _REFRESHER),
    (re.compile(r"permission denied for materialized view (\S+)"), None),   # see _matview_hint
    (re.compile(r"permission denied for (?:table|view) (\S+)"), _SELECT),
    (re.compile(r"permission denied for schema (\S+)"),
     "GRANT USAGE (and CREATE, for migrations) ON SCHEMA {0} TO this role, " + _ADMIN),
    (re.compile(r"permission denied for database (\S+)"),
     "the migrations create schema bioloupe_views: GRANT CREATE ON DATABASE {0} TO this role, "
     + _ADMIN),
]


def _server_version(exc: BaseException) -> int | None:
    """server_version_num of the connection the error came from (e.g. 170010), if known."""
    try:
        return exc.cursor.connection.server_version or None  # type: ignore[attr-defined]
    except Exception:
        return None


def _statement(exc: BaseException) -> str | None:
    """The failing statement as far as the error tells: the CONTEXT's "SQL statement" (a
    REFRESH run inside a function) and the query the cursor sent; None if neither is known."""
    parts = []
    try:
        parts.append(exc.diag.context or "")  # type: ignore[attr-defined]
    except Exception:
        pass
    try:
        query = exc.cursor.query  # type: ignore[attr-defined]
        parts.append(query.decode(errors="replace") if isinstance(query, bytes) else query or "")
    except Exception:
        pass
    text = " ".join(p for p in parts if p)
    return text or None


def _matview_hint(line: str, statement: str | None, version: int | None) -> str:
    """The hint for a materialized view, whose REFRESH rights changed in PostgreSQL 17."""
    refreshing = None if statement is None else bool(
        re.search(r"\bREFRESH\s+MATERIALIZED\s+VIEW\b", statement, re.IGNORECASE))
    if line.startswith("must be owner"):
        # 15/16: REFRESH (or DDL); 17+: only DDL, REFRESH says "permission denied" there.
        if (version and version >= 170000) or refreshing is False:
            return _OWNER
        return _REFRESH_15
    if refreshing:
        return _REFRESH_17
    if refreshing is False or (version and version < 170000):
        return _SELECT
    return _SELECT_OR_MAINTAIN


def explain(exc: BaseException) -> str:
    """One line for a database error: PostgreSQL's own first line, plus the grant to ask for
    when it is a permission error."""
    text = str(exc).strip()
    return explain_message(text.splitlines()[0] if text else type(exc).__name__,
                           getattr(exc, "pgcode", None), _statement(exc), _server_version(exc))


def explain_message(message: str, sqlstate: str | None, statement: str | None = None,
                    server_version: int | None = None) -> str:
    """The same, for an error the engine recorded: its message, SQLSTATE, and the failing
    statement (its CONTEXT) and server version where known."""
    line = re.sub(r"^ERROR:\s+", "", message)
    if sqlstate != INSUFFICIENT_PRIVILEGE:
        return line
    for pattern, hint in _HINTS:
        match = pattern.search(line)
        if match:
            hint = hint or _matview_hint(line, statement, server_version)
            return f"{line}: {hint.format(*match.groups())}"
    return f"{line}: ask for the missing privilege, {_ADMIN}"
