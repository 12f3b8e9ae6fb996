"""The source contract (sources/contract.toml): the seventeen tables the marts read, and
the schema they live in.

Used to check a real database before a migration or a refresh touches it, and to build the
source tables in throwaway databases (tests, demo, benchmark). Never run against production:
`create_tables` is for throwaway databases only.

The source schema is `-x source_schema=NAME` (migrations) or BIOLOUPE_SOURCE_SCHEMA, else
the schema the installed marts already read, else public. Marts and checks are bound to it
when they are created (definitions.binding_search_path), so they never find a source
through a session's search_path; the migration fixes it for its transaction with `use()`.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path

from psycopg2 import sql

from .definitions import MART_SCHEMA, in_project, marts
from .errors import ContractError

SOURCES_DIR = Path(__file__).parent / "sources"
DEFAULT_SCHEMA = "public"
X_ARGUMENT = "source_schema"
SCHEMA_VAR = "BIOLOUPE_SOURCE_SCHEMA"
_SETTING = "bioloupe_views.source_schema"  # the migration transaction's choice
_RELATIONS = "('r', 'p', 'v', 'm', 'f')"


@cache
def tables() -> dict[str, dict[str, str]]:
    """table -> column -> declared type ("bigint primary key", "text not null", ...)."""
    return tomllib.loads((SOURCES_DIR / "contract.toml").read_text())


def configured(x_arguments: dict | None = None, environ: dict | None = None) -> str | None:
    """The schema asked for: `-x source_schema=...`, else BIOLOUPE_SOURCE_SCHEMA, else None."""
    env = os.environ if environ is None else environ
    value = ((x_arguments or {}).get(X_ARGUMENT) or env.get(SCHEMA_VAR) or "").strip()
    return value or None


def bound_schemas(cur) -> list[str]:
    """The schemas whose contract tables the installed marts read (catalog lineage)."""
    cur.execute(in_project("SELECT to_regclass('{project_text}.mart_reads') IS NOT NULL"))
    if not cur.fetchone()[0]:
        return []
    cur.execute(in_project(
        "SELECT DISTINCT n.nspname FROM {project}.mart_reads r"
        " JOIN pg_catalog.pg_class c ON c.oid = r.relid"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = ANY(%s) ORDER BY 1"), (list(tables()),))
    return [name for (name,) in cur.fetchall()]


def resolve(cur, asked: str | None) -> str:
    """The source schema for this migration, validated: the one asked for must exist and
    must be the one the installed marts read (moving them is a rebuild, not a setting)."""
    bound = bound_schemas(cur)
    schema = asked or (bound[0] if len(bound) == 1 else DEFAULT_SCHEMA)
    cur.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", (schema,))
    if not cur.fetchone():
        raise ContractError(f"source schema {schema} does not exist: set -x {X_ARGUMENT}=NAME "
                            f"or {SCHEMA_VAR} to the schema that holds the source tables")
    if bound and bound != [schema]:
        raise ContractError(
            f"the installed marts read their sources from schema {', '.join(bound)}, not "
            f"{schema}: unset {SCHEMA_VAR} / -x {X_ARGUMENT}, or move the marts by "
            f"`alembic downgrade base` then `alembic upgrade head` with the new schema")
    return schema


def use(cur, schema: str) -> None:
    """Fix the source schema for the rest of this transaction (the migration's)."""
    cur.execute("SELECT set_config(%s, %s, true)", (_SETTING, schema))


def current(cur) -> str:
    """The source schema in force: the migration's (use()), else the one the installed
    marts read, else public."""
    cur.execute("SELECT current_setting(%s, true)", (_SETTING,))
    chosen = cur.fetchone()[0]
    if chosen:
        return chosen
    bound = bound_schemas(cur)
    return bound[0] if len(bound) == 1 else DEFAULT_SCHEMA


def missing(conn, schema: str) -> list[str]:
    """Missing tables ("drugs") and columns ("drugs.name") in `schema`, in contract order;
    then relations named like a mart, which would stand in for the mart when the marts'
    SQL is bound with the source schema first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.relname, a.attname FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_catalog.pg_attribute a"
            "   ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            f" WHERE n.nspname = %s AND c.relkind IN {_RELATIONS}", (schema,))
        present: dict[str, set[str]] = {}
        for table, column in cur.fetchall():
            present.setdefault(table, set()).add(column)
    problems = []
    for table, columns in tables().items():
        if table not in present:
            problems.append(table)
            continue
        problems.extend(f"{table}.{col}" for col in columns if col not in present[table])
    if schema != MART_SCHEMA:
        problems.extend(f"!{name}" for name in marts() if name in present)
    return problems


def describe_missing(problems: list[str], schema: str) -> str:
    shadows = [p[1:] for p in problems if p.startswith("!")]
    missing_tables = [p for p in problems if "." not in p and not p.startswith("!")]
    missing_columns = [p for p in problems if "." in p]
    parts = []
    if missing_tables:
        parts.append(f"missing tables: {', '.join(missing_tables)}")
    if missing_columns:
        parts.append(f"missing columns: {', '.join(missing_columns)}")
    if shadows:
        parts.append(f"relations named like a mart: {', '.join(shadows)}")
    return (f"the source contract is not met in schema {schema} ({'; '.join(parts)}): "
            f"point the DSN at the bioloupe database, set -x {X_ARGUMENT}=NAME or "
            f"{SCHEMA_VAR} to the sources' schema, or create the sources first; "
            "nothing was created")


def create_tables(conn, schema: str = DEFAULT_SCHEMA) -> None:
    """Create empty source tables from the contract. Throwaway databases only."""
    with conn.cursor() as cur:
        for table, columns in tables().items():
            body = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(col), sql.SQL(decl))
                                      for col, decl in columns.items())
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(
                sql.Identifier(schema, table), body))
