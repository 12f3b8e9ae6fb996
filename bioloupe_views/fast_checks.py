"""Checks that cost less, with the same results (project schema v3 on).

A mart's checks used to read the mart once each. Two ways to do less, both decided here
when the migration installs a version's checks, and both re-verified by run_checks():

- Column checks (not_null, accepted_values) are counted together, by one view per mart
  (`<mart>__column_checks` in bioloupe_views_checks) that scans the mart once with
  `count(*) FILTER (...)`, the way Soda Core and Great Expectations batch their metrics.
  The counts are dbt's: not_null counts the NULL rows, accepted_values the distinct values
  (NULL ignored) outside the list. Only a check that fails reads its own view, for the sample.
- A unique check whose expression a unique index of the mart makes unique is implied: a
  plain column that the index covers, or columns joined by `||` with literals that do not
  start with a digit, each column but the last an integer or a text. Such text reads back
  one way only (an integer's digits end where its separator starts; the last column is the
  rest), so equal text means equal columns, and a NULL column makes the text NULL, which
  dbt ignores. run_checks() passes it without reading the mart while that index is still
  unique, valid and on those columns only, and runs it otherwise.
- A text column reads back one way only while it holds no first character of the separator
  after it: ('a-', 1) and ('a', -1) both give 'a--1'. Where the project schema keeps such a
  guard (v5 on), the mart's one scan also counts the rows whose text columns do hold it,
  and run_checks() runs the check for real when that count is not 0. Without the guard
  (v3, v4) a text column before the last implies nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg2 import sql

from . import binding, definitions
from .definitions import in_project

BATCHED_TESTS = ("not_null", "accepted_values")
INTEGER_TYPES = ("smallint", "integer", "bigint")
TEXT_TYPES = ("text", "character varying")
_IDENTIFIER = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*$")
_LITERAL = re.compile(r"^\s*'((?:[^']|'')*)'\s*$")


@dataclass(frozen=True)
class Implication:
    index: str
    columns: tuple[str, ...]
    guard: sql.Composable | None = None  # counts the rows for which it does not hold


def _mart_check_has(cur, column: str) -> bool:
    """Whether the installed project schema's mart_check has `column`: what tells its
    versions apart here, since checks are installed in the form the schema version runs."""
    cur.execute("SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid ="
                " to_regclass(%s) AND attname = %s AND NOT attisdropped",
                (f"{definitions.PROJECT_SCHEMA}.mart_check", column))
    return cur.fetchone() is not None


def supported(cur) -> bool:
    """Whether the project schema records batches and implications (v3 on)."""
    return _mart_check_has(cur, "batch_relation")


def guards_supported(cur) -> bool:
    """Whether the project schema keeps the guards of implied checks (v5 on)."""
    return _mart_check_has(cur, "implied_guard_column")


def batch_relation(mart: str) -> str:
    return definitions.check_relation(f"{mart}__column_checks")


def batch_expression(check) -> sql.Composable | None:
    """The aggregate that counts `check`'s failures in one pass, or None if it has none."""
    if check.test == "not_null":
        return sql.SQL("pg_catalog.count(*) FILTER (WHERE ({}) IS NULL)").format(
            sql.SQL(check.column))
    if check.test == "accepted_values":
        return sql.SQL("pg_catalog.count(DISTINCT ({col})) FILTER (WHERE ({col}) NOT IN ({values}))"
                       ).format(col=sql.SQL(check.column), values=sql.SQL(check.values))
    return None


def _unique_columns(expression: str) -> tuple[tuple[str, ...], bool] | None:
    """(columns, joined) for `col` or `col || 'sep' || col ...` whose separators do not start
    with a digit; None for any other expression."""
    parts = expression.split("||")
    if len(parts) == 1:
        match = _IDENTIFIER.match(parts[0])
        return ((match.group(1),), False) if match else None
    if len(parts) % 2 == 0:
        return None
    columns = []
    for position, part in enumerate(parts):
        if position % 2 == 0:
            match = _IDENTIFIER.match(part)
            if not match:
                return None
            columns.append(match.group(1))
        else:
            match = _LITERAL.match(part)
            if not match or not match.group(1) or match.group(1)[0].isdigit():
                return None
    return tuple(columns), True


def _separators(expression: str) -> list[str]:
    """The literals between the columns of a joined expression that _unique_columns accepts."""
    return [_LITERAL.match(part).group(1).replace("''", "'")
            for part in expression.split("||")[1::2]]


def _guard(columns, separators, types) -> sql.Composable | None | bool:
    """The count of rows whose text could read back another way; None when every column
    before the last is an integer; False when a column is neither integer nor text."""
    texts = []
    for column, separator in zip(columns[:-1], separators):
        if types.get(column) in TEXT_TYPES:
            texts.append(sql.SQL("pg_catalog.strpos({}, {}) > 0").format(
                sql.Identifier(column), sql.Literal(separator[0])))
        elif types.get(column) not in INTEGER_TYPES:
            return False
    if not texts:
        return None
    return sql.SQL("pg_catalog.count(*) FILTER (WHERE {})").format(sql.SQL(" OR ").join(texts))


def implication(cur, version: definitions.MartVersion, check) -> Implication | None:
    """The unique index of `version` that makes `check` (a unique check) always pass, with
    the guard that must count 0 for it to hold, if any."""
    if check.test != "unique":
        return None
    parsed = _unique_columns(check.column)
    if parsed is None:
        return None
    columns, joined = parsed
    guard = None
    if joined:
        cur.execute("SELECT a.attname, pg_catalog.format_type(a.atttypid, NULL)"
                    " FROM pg_catalog.pg_attribute a WHERE a.attrelid = %s::regclass"
                    " AND a.attnum > 0 AND NOT a.attisdropped",
                    (f"{definitions.MART_SCHEMA}.{version.mart}",))
        guard = _guard(columns, _separators(check.column), dict(cur.fetchall()))
        if guard is False or (guard is not None and not guards_supported(cur)):
            return None
    for index in version.indexes:
        if index.unique and set(index.columns) <= set(columns):
            return Implication(index.name, index.columns, guard)
    return None


def install(cur, version: definitions.MartVersion, compiled: list) -> None:
    """Record the implied checks and create the mart's batch view, after its checks: one
    column per column check (c1, c2, ...) and per guard of an implied check (g1, ...)."""
    relation = batch_relation(version.mart)
    batched = [(check, batch_expression(check)) for check in compiled]
    batched = [(check, expression) for check, expression in batched if expression is not None]
    guards = []
    for check in compiled:
        found = implication(cur, version, check)
        if found:
            cur.execute(in_project("UPDATE {project}.mart_check SET implied_by = %s,"
                                   " implied_columns = %s::name[] WHERE name = %s"),
                        (found.index, list(found.columns), check.name))
        if found and found.guard is not None:
            guards.append((check, found.guard))
            cur.execute(in_project("UPDATE {project}.mart_check SET implied_guard_relation = %s,"
                                   " implied_guard_column = %s WHERE name = %s"),
                        (relation, f"g{len(guards)}", check.name))
    if not batched and not guards:
        return
    counts = [(expression, f"c{n}") for n, (_, expression) in enumerate(batched, 1)]
    counts += [(guard, f"g{n}") for n, (_, guard) in enumerate(guards, 1)]
    body = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.SQL("{} AS {}").format(expression, sql.Identifier(name))
                           for expression, name in counts),
        sql.Identifier(definitions.MART_SCHEMA, version.mart))
    ident = sql.Identifier(definitions.CHECKS_SCHEMA, relation)
    with definitions.binding_search_path(cur):
        cur.execute(definitions.create_view_statement(ident, body.as_string(cur),
                                                      materialized=False))
    binding.verify(cur, ident)
    for n, (check, _) in enumerate(batched, 1):
        cur.execute(in_project("UPDATE {project}.mart_check SET batch_relation = %s,"
                               " batch_column = %s WHERE name = %s"),
                    (relation, f"c{n}", check.name))


def uninstall(cur, mart: str) -> None:
    """Drop the mart's batch view (its checks' rows go with checks.uninstall)."""
    cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(
        sql.Identifier(definitions.CHECKS_SCHEMA, batch_relation(mart))))
