"""What the project's views are bound to, verified in the catalog.

A view binds every name in its query when it is created: a function, aggregate or operator
is chosen among all the candidates on the search_path, and an exact match of the argument
types in a later schema beats pg_catalog's polymorphic one (a planted
`public.array_agg(text)` wins over `pg_catalog.array_agg(anynonarray)`). The search_path
cannot prevent that while the marts' names resolve in a schema other roles may create in,
so the result is checked instead: after creating a mart, a check view or the project's own
views, its dependencies in pg_depend may only be PostgreSQL's own objects, the contract's
source tables (and their columns' types), the marts and the project's schemas
(sql/_queries/foreign_dependencies.sql). Anything else stops the migration, naming it; the
migration's single transaction then leaves nothing behind.

Marts are created WITH NO DATA, checked, and only then populated, so a planted function is
never executed, not even once while the migration builds the mart.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2 import sql

from . import contract, definitions
from .definitions import in_project
from .errors import UserError

_QUERY = definitions.SQL_DIR / "_queries" / "foreign_dependencies.sql"
PROJECT_SCHEMAS = (definitions.PROJECT_SCHEMA, definitions.CHECKS_SCHEMA)


class BindingError(UserError):
    """A project view would be bound to an object some role planted."""


@dataclass(frozen=True)
class Foreign:
    dependent: str       # "materialized view mv_x", "view bioloupe_views_checks.c", "function f(...)"
    object: str          # pg_describe_object: "function public.array_agg(text)"
    schema: str | None
    owner: str | None

    def describe(self) -> str:
        where = f"schema {self.schema}, " if self.schema else ""
        return f"{self.dependent} is bound to {self.object} ({where}owner {self.owner or '?'})"


def foreign(cur, relations: list[int] = (), functions: list[int] = ()) -> list[Foreign]:
    """The dependencies of these relations (pg_class oids) and functions (pg_proc oids) on
    objects they may not be bound to."""
    if not relations and not functions:
        return []
    cur.execute(_QUERY.read_text(), {
        "oids": list(relations), "functions": list(functions),
        "source_schema": contract.current(cur), "contract": list(contract.tables()),
        "mart_schema": definitions.MART_SCHEMA, "marts": list(definitions.marts()),
        "project_schemas": list(PROJECT_SCHEMAS)})
    return [Foreign(*row) for row in cur.fetchall()]


def verify(cur, relation: sql.Identifier) -> None:
    """Stop with one line when the just-created `relation` is bound to a planted object."""
    cur.execute("SELECT pg_catalog.to_regclass(%s)::pg_catalog.oid", (relation.as_string(cur),))
    oid = cur.fetchone()[0]
    problems = foreign(cur, [oid]) if oid is not None else []
    if problems:
        raise BindingError(refusal(problems))


def refusal(problems: list[Foreign]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (f"refusing to install: {first.describe()}{more}, which is neither PostgreSQL's own "
            "nor the sources' nor this project's, so it would run with the rights of whoever "
            f"refreshes or reads it; drop or move {first.object} (and check who created it), "
            "then migrate again; nothing was changed")


def installed(cur) -> list[Foreign]:
    """Every foreign dependency of what the project has installed: the marts, the check
    views, and the views and functions of the project schema."""
    cur.execute(in_project(
        "SELECT pg_catalog.array_agg(c.oid) FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE (n.nspname = ANY(%s) AND c.relkind IN ('v', 'm'))"
        "    OR (n.nspname = %s AND c.relname = ANY(%s) AND c.relkind = 'm')"),
        (list(PROJECT_SCHEMAS), definitions.MART_SCHEMA, list(definitions.marts())))
    relations = cur.fetchone()[0] or []
    cur.execute("SELECT pg_catalog.array_agg(p.oid) FROM pg_catalog.pg_proc p"
                " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = ANY(%s)", (list(PROJECT_SCHEMAS),))
    functions = cur.fetchone()[0] or []
    return foreign(cur, relations, functions)


def require_clean(cur) -> None:
    """Stop a migration when anything installed is bound to a planted object."""
    problems = installed(cur)
    if problems:
        raise BindingError(refusal(problems))


def create_mart(cur, version: definitions.MartVersion, schema: str = definitions.MART_SCHEMA,
                options: sql.Composable | None = None, with_data: bool = True) -> int:
    """Create a mart version as schema.<mart>: empty, its bindings verified, then populated
    and indexed, so its query never runs before it is known to call nothing planted.
    Returns the new relation's oid."""
    ident = sql.Identifier(schema, version.mart)
    with definitions.binding_search_path(cur):
        cur.execute(version.create_statement(schema, options=options, with_data=False))
    verify(cur, ident)
    if with_data:
        cur.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(ident))
    for statement in version.index_statements(schema):
        cur.execute(statement)
    if with_data:
        # A new relation has no statistics until autovacuum gets to it; the app's first
        # queries would be planned blind (a lookup read as a scan of the whole mart).
        cur.execute(sql.SQL("ANALYZE {}").format(ident))
    cur.execute("SELECT pg_catalog.to_regclass(%s)::pg_catalog.oid", (ident.as_string(cur),))
    return cur.fetchone()[0]
