"""The data checks: dbt's tests as SQL assertions, part of each mart version.

A check is a query returning the offending rows; it passes when it returns none, and its
failure count is the number of rows it returns, with dbt's meaning for each generic test:
- not_null: the rows whose column is NULL;
- unique: the distinct values (NULL ignored) that occur more than once;
- accepted_values: the distinct values (NULL ignored) outside the list;
- relationships: the child rows (NULL ignored) whose value is missing from the parent.

The generic tests are templates in sql/_checks/<test>.sql, written like dbt's own test SQL;
a version declares them in its mart.toml. Singular checks are the version's checks/*.sql.

The migration that creates or replaces a mart at version N installs N's checks
(`install`): each becomes a view in bioloupe_views_checks (definitions.check_relation()), created and owned by
the migration's role with a pinned search_path, and a row in bioloupe_views.mart_check. So
what a check runs is fixed when it is migrated, and no role that runs checks can change it.
Every runner (refresh-views, pg_cron, `check`, the pytest plugin, Dagster) runs them through
the database's bioloupe_views.run_checks().
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg2 import sql

from . import binding, definitions, fast_checks
from .errors import UserError
from .definitions import in_project

GENERIC_TESTS = ("not_null", "unique", "accepted_values", "relationships")
SEVERITIES = ("error", "warn")
_SEVERITY_COMMENT = re.compile(r"^--\s*severity:\s*(\w+)\s*$", re.M)


@dataclass(frozen=True)
class Check:
    name: str
    mart: str
    test: str  # one of GENERIC_TESTS, or "singular"
    severity: str
    sql: str
    column: str | None = None  # a generic test's column expression
    values: str | None = None  # accepted_values: the list, as SQL literals


def _literal(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UserError(f"accepted_values supports strings and numbers, got {value!r}")
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _slug(expression: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", expression.lower()).strip("_")


def _render(template: str, values: dict[str, str]) -> str:
    def substitute(match: re.Match) -> str:
        return values[match.group(1)]

    return re.sub(r"\{\{\s*(\w+)\s*\}\}", substitute, template).strip()


def _generic(version: definitions.MartVersion, decl: dict) -> Check:
    test = decl.get("test")
    if test not in GENERIC_TESTS:
        raise UserError(f"{version.directory}/mart.toml: unknown test {test!r}; "
                        f"use one of {GENERIC_TESTS}")
    column = decl["column"]
    values = {"model": f"{definitions.MART_SCHEMA}.{version.mart}", "column": column}
    name = f"{test}_{version.mart}_{_slug(column)}"
    if test == "accepted_values":
        values["values"] = ", ".join(_literal(v) for v in decl["values"])
    if test == "relationships":
        values["to"] = decl["to"]
        values["field"] = decl["field"]
        name += f"__{decl['field']}__{decl['to']}"
    template = (definitions.SQL_DIR / "_checks" / f"{test}.sql").read_text()
    return Check(decl.get("name", name), version.mart, test,
                 _severity(decl.get("severity"), name), _render(template, values),
                 column=column, values=values.get("values"))


def _singular(version: definitions.MartVersion, path) -> Check:
    text = path.read_text()
    match = _SEVERITY_COMMENT.search(text)
    return Check(path.stem, version.mart, "singular",
                 _severity(match and match.group(1), path.stem), text.strip().rstrip(";"))


def _severity(value: str | None, name: str) -> str:
    severity = value or "error"
    if severity not in SEVERITIES:
        raise UserError(f"check {name}: severity must be one of {SEVERITIES}, got {severity!r}")
    return severity


def compile_version(version: definitions.MartVersion) -> list[Check]:
    """The checks of one mart version, in declaration order, generic ones first."""
    result = [_generic(version, decl) for decl in version.check_declarations]
    result += [_singular(version, path) for path in version.singular_check_files]
    return result


def compile_all() -> list[Check]:
    """Every check of every mart's latest version, in mart order then declaration order."""
    result: list[Check] = []
    for mart in definitions.marts().values():
        result.extend(compile_version(mart.latest))
    _require_unique_names(result)
    return result


def _require_unique_names(compiled: list[Check]) -> None:
    names = [c.name for c in compiled]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise UserError(f"check names must be unique; give these a `name`: {', '.join(duplicated)}")


# -- installing a version's checks -------------------------------------------------------

def _registry(cur) -> str | None:
    """Which form of check registry the project schema has: 'views' (v2 on), 'rows' (v1)."""
    cur.execute(in_project("SELECT to_regclass('{project_text}.mart_check') IS NOT NULL,"
                " to_regclass('{project_text}.check_definition') IS NOT NULL"))
    views, rows = cur.fetchone()
    return "views" if views else "rows" if rows else None


def remove(cur, name: str) -> None:
    """Remove one check by name (a migration that retires a check of a later version)."""
    cur.execute(in_project("SELECT relation FROM {project}.mart_check WHERE name = %s"), (name,))
    for (relation,) in cur.fetchall():
        cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(
            sql.Identifier(definitions.CHECKS_SCHEMA, relation)))
    cur.execute(in_project("DELETE FROM {project}.mart_check WHERE name = %s"), (name,))


def uninstall(cur, mart: str) -> None:
    """Remove the checks of `mart`, whatever version they belong to."""
    registry = _registry(cur)
    if registry == "views":
        if fast_checks.supported(cur):
            fast_checks.uninstall(cur, mart)
        cur.execute(in_project("SELECT relation FROM {project}.mart_check WHERE mart = %s"), (mart,))
        for (name,) in cur.fetchall():
            cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(
                sql.Identifier(definitions.CHECKS_SCHEMA, name)))
        cur.execute(in_project("DELETE FROM {project}.mart_check WHERE mart = %s"), (mart,))
    elif registry == "rows":
        cur.execute(in_project("DELETE FROM {project}.check_definition WHERE mart = %s"), (mart,))


def install(cur, version: definitions.MartVersion) -> list[Check]:
    """Replace the checks of the version's mart with the version's own, then, where the
    project schema runs them so (v3 on), batch its column checks and record the checks its
    unique indexes imply (fast_checks.py). Run by the migration's role, in its transaction."""
    compiled = compile_version(version)
    uninstall(cur, version.mart)
    for check in compiled:
        add(cur, check, version.number)
    if _registry(cur) == "views" and fast_checks.supported(cur):
        fast_checks.install(cur, version, compiled)
    return compiled


def add(cur, check: Check, version: int) -> None:
    """Install one check of `check.mart` (at the mart's `version`), after all others."""
    registry = _registry(cur)
    if registry is None:
        return
    table = "mart_check" if registry == "views" else "check_definition"
    table_ident = sql.Identifier(definitions.PROJECT_SCHEMA, table)
    cur.execute(sql.SQL("SELECT 1 FROM {} WHERE name = %s").format(table_ident), (check.name,))
    if cur.fetchone():
        raise UserError(f"check names must be unique; give {check.name} of {check.mart} "
                        "another `name`")
    cur.execute(sql.SQL("SELECT coalesce(max(position), -1) + 1 FROM {}").format(table_ident))
    position = cur.fetchone()[0]
    if registry == "views":
        _create_view(cur, check)
        cur.execute(in_project("INSERT INTO {project}.mart_check"
                    " (name, mart, version, test, severity, position, relation)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)"),
                    (check.name, check.mart, version, check.test, check.severity, position,
                     definitions.check_relation(check.name)))
    else:
        cur.execute(in_project("INSERT INTO {project}.check_definition"
                    " (name, mart, test, severity, position, sql)"
                    " VALUES (%s, %s, %s, %s, %s, %s)"),
                    (check.name, check.mart, check.test, check.severity, position, check.sql))


def _create_view(cur, check: Check) -> None:
    """The check as a view, its names and operators bound now, and verified to be bound to
    nothing a role planted (binding.py)."""
    ident = sql.Identifier(definitions.CHECKS_SCHEMA, definitions.check_relation(check.name))
    with definitions.binding_search_path(cur):
        cur.execute(definitions.create_view_statement(ident, check.sql, materialized=False))
    binding.verify(cur, ident)


def install_all(cur) -> None:
    """(Re)install the checks of every registered mart at its registered version."""
    cur.execute(in_project("SELECT name, version FROM {project}.mart ORDER BY name"))
    for name, number in cur.fetchall():
        install(cur, definitions.get(name).version(number))


def run(conn, marts: list[str]) -> list[dict]:
    """Run the installed checks of `marts` (in order) through bioloupe_views.run_checks()."""
    results = []
    with conn.cursor() as cur:
        for mart in marts:
            cur.execute(in_project("SELECT to_jsonb(r) FROM {project}.run_checks(%s) r"), (mart,))
            results.extend(row[0] for row in cur.fetchall())
    return results
