"""Synthetic source data for throwaway databases (tests, demo, benchmark).

Generated in SQL (dev/generate.sql) with a `scale` knob: 1 is about 1/60 of production,
60 is production scale. Deterministic: the same scale always gives the same rows, and every
edge case in the source contract is present at every scale.
"""

from __future__ import annotations

from pathlib import Path

from .. import contract

GENERATE_SQL = Path(__file__).parent / "generate.sql"
MUTATE_SQL = Path(__file__).parent / "mutate.sql"


def load(conn, scale: float = 1.0) -> None:
    """Create the source tables and fill them (throwaway databases only)."""
    contract.create_tables(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT set_config('bioloupe.scale', %s, false)", (str(scale),))
        cur.execute(GENERATE_SQL.read_text())


def mutate(conn) -> None:
    """Apply a deterministic batch of inserts, updates and deletes to the sources."""
    with conn.cursor() as cur:
        cur.execute(MUTATE_SQL.read_text())
