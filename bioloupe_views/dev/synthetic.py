"""Synthetic source data for throwaway databases (tests, demo, benchmark).

Generated in SQL (dev/generate.sql) with a `scale` knob: 1 is about 1/60 of production,
60 is production scale. Deterministic: the same scale always gives the same rows, and every
edge case in the source contract is present at every scale.
"""

from __future__ import annotations

from pathlib import Path

import psycopg2
from psycopg2 import sql

from .. import contract, migrate

GENERATE_SQL = Path(__file__).parent / "generate.sql"
MUTATE_SQL = Path(__file__).parent / "mutate.sql"


def load(conn, scale: float = 1.0, schema: str = contract.DEFAULT_SCHEMA) -> None:
    """Create the source tables in `schema` and fill them (throwaway databases only)."""
    contract.create_tables(conn, schema)
    with conn.cursor() as cur:
        cur.execute("SELECT set_config('bioloupe.scale', %s, false)", (str(scale),))
        cur.execute("SELECT current_setting('search_path')")
        previous = cur.fetchone()[0]
        cur.execute("SELECT set_config('search_path', %s, false)",
                    (sql.Identifier(schema).as_string(cur),))
        try:
            cur.execute(GENERATE_SQL.read_text())
        finally:
            cur.execute("SELECT set_config('search_path', %s, false)", (previous,))


def mutate(conn, schema: str = contract.DEFAULT_SCHEMA) -> None:
    """Apply a deterministic batch of inserts, updates and deletes to the sources, on any
    session (the tool's own pin search_path to pg_catalog, pg_temp)."""
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('search_path')")
        previous = cur.fetchone()[0]
        cur.execute("SELECT set_config('search_path', %s, false)",
                    (sql.Identifier(schema).as_string(cur) + ", pg_temp",))
        try:
            cur.execute(MUTATE_SQL.read_text())
        finally:
            cur.execute("SELECT set_config('search_path', %s, false)", (previous,))


def migrated_database(server, name: str, scale: float, analyze: bool = False) -> str:
    """A new database `name` on the throwaway `server`, with the synthetic sources (ANALYZEd
    if asked) and the marts migrated to head; returns its DSN."""
    dsn = server.create_database(name)
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        load(conn, scale)
        if analyze:
            conn.cursor().execute("ANALYZE")
    finally:
        conn.close()
    migrate.upgrade(dsn)
    return dsn
