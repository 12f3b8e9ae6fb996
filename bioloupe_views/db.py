"""Connections, with libpq's failures turned into one-line messages that say what to do."""

from __future__ import annotations

import psycopg2
import psycopg2.extensions

from .config import describe, mask_text
from .errors import ConnectError, NotMigratedError
from .definitions import in_project

APPLICATION_NAME = "bioloupe-views"

# What every session the tool opens runs with, whatever the role's or the database's defaults
# (ALTER ROLE/DATABASE ... SET, PGOPTIONS): names resolve only in pg_catalog (so nothing a
# role planted in public or a source schema can stand in for a built-in function or
# operator; the tool qualifies everything else), and each statement sees what committed
# before it (the engine's waits and the run log's progress move with the database). A
# role's statement_timeout would cancel the tool's own bookkeeping halfway: refreshes are
# bounded by the run's --statement-timeout instead, applied per mart.
SESSION_SETTINGS = (
    ("search_path", "pg_catalog, pg_temp"),
    ("default_transaction_isolation", "read committed"),
    ("statement_timeout", "0"),
)


def connect(dsn: str, application_name: str = APPLICATION_NAME, autocommit: bool = True):
    """Open a psycopg2 connection or raise ConnectError with an actionable message."""
    try:
        # Keepalives: a session that waits on the server for minutes (the run's lock holder,
        # a refresh) must not be dropped by an idle-connection reaper on the way.
        conn = psycopg2.connect(dsn, application_name=application_name, connect_timeout=10,
                                keepalives=1, keepalives_idle=30, keepalives_interval=10,
                                keepalives_count=3)
    except psycopg2.OperationalError as exc:
        raise ConnectError(explain_connect_error(str(exc), dsn)) from None
    pin_session(conn)
    conn.autocommit = autocommit
    return conn


def pin_session(conn) -> None:
    """Apply SESSION_SETTINGS to a new connection (any DB-API psycopg2 connection: the CLI's,
    Alembic's, a worker's), for the whole session."""
    saved = conn.autocommit
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name, value in SESSION_SETTINGS:
                cur.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))
    finally:
        conn.autocommit = saved


def explain_connect_error(message: str, dsn: str) -> str:
    target = describe(dsn)
    text = mask_text(" ".join(message.split()), dsn)
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return (f"password authentication failed for {target} (password ***): "
                "check PGPASSFILE/~/.pgpass, BIOLOUPE_DB_PASSWORD or the password in the DSN")
    if "database" in lowered and "does not exist" in lowered:
        return f"the database in {target} does not exist: check BIOLOUPE_DB_NAME or the DSN"
    if "role" in lowered and "does not exist" in lowered:
        return f"the user in {target} does not exist: check BIOLOUPE_DB_USER or the DSN"
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"unknown host in {target}: check BIOLOUPE_DB_HOST or the DSN"
    if ("connection refused" in lowered or "could not connect" in lowered
            or "timeout expired" in lowered or "no route to host" in lowered
            or "is the server running" in lowered):
        return (f"cannot reach PostgreSQL at {target}: is the server running and the "
                "host/port right? (BIOLOUPE_DB_HOST, BIOLOUPE_DB_PORT or the DSN)")
    return f"cannot connect to {target}: {text}"


def require_migrated(conn) -> None:
    """Stop early, with the fix, when the project's schema is not in this database."""
    with conn.cursor() as cur:
        cur.execute(in_project("SELECT to_regclass('{project_text}.mart') IS NOT NULL,"
                    " to_regclass('{project_text}.mart_check') IS NOT NULL"))
        schema, current = cur.fetchone()
    if not schema:
        raise NotMigratedError(
            "this database has no bioloupe_views schema: run `alembic upgrade head` first")
    if not current:
        raise NotMigratedError(
            "this database's bioloupe_views schema is older than this bioloupe-views: "
            "run `alembic upgrade head` first")


def first_line(exc: BaseException) -> str:
    """The first line of a database error, which is the one PostgreSQL means for humans."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
