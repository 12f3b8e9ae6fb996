"""The source contract (sources/contract.toml): the seventeen tables the marts read.

Used to check a real database before a migration or a refresh touches it, and to build the
source tables in throwaway databases (tests, demo, benchmark). Never run against production:
`create_tables` is for throwaway databases only.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

SOURCES_DIR = Path(__file__).parent / "sources"
SOURCE_SCHEMA = "public"


@cache
def tables() -> dict[str, dict[str, str]]:
    """table -> column -> declared type ("bigint primary key", "text not null", ...)."""
    return tomllib.loads((SOURCES_DIR / "contract.toml").read_text())


def missing(conn) -> list[str]:
    """Missing tables ("drugs") and columns ("drugs.name"), in contract order."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.relname, a.attname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            (SOURCE_SCHEMA,),
        )
        present: dict[str, set[str]] = {}
        for table, column in cur.fetchall():
            present.setdefault(table, set()).add(column)
    problems = []
    for table, columns in tables().items():
        if table not in present:
            problems.append(table)
            continue
        problems.extend(f"{table}.{col}" for col in columns if col not in present[table])
    return problems


def describe_missing(problems: list[str]) -> str:
    missing_tables = [p for p in problems if "." not in p]
    missing_columns = [p for p in problems if "." in p]
    parts = []
    if missing_tables:
        parts.append(f"missing tables: {', '.join(missing_tables)}")
    if missing_columns:
        parts.append(f"missing columns: {', '.join(missing_columns)}")
    return (f"the source contract is not met in schema {SOURCE_SCHEMA} ({'; '.join(parts)}): "
            "point the DSN at the bioloupe database, or create the sources first; nothing was created")


def create_tables(conn) -> None:
    """Create empty source tables from the contract. Throwaway databases only."""
    with conn.cursor() as cur:
        for table, columns in tables().items():
            body = ", ".join(f'"{col}" {decl}' for col, decl in columns.items())
            cur.execute(f'CREATE TABLE {SOURCE_SCHEMA}."{table}" ({body})')
