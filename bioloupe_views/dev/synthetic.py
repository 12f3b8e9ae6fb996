"""Synthetic source data for throwaway databases (tests, demo, benchmark).

Generated in SQL (dev/generate.sql) with a `scale` knob: 1 is about 1/60 of production,
60 is production scale. Deterministic: the same scale always gives the same rows, and every
edge case in the source contract is present at every scale.
"""

from __future__ import annotations

from pathlib import Path

from psycopg2 import sql

from .. import contract

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


def mutate(conn) -> None:
    """Apply a deterministic batch of inserts, updates and deletes to the sources."""
    with conn.cursor() as cur:
        cur.execute(MUTATE_SQL.read_text())
