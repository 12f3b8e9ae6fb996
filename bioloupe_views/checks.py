"""The data checks: dbt's tests as SQL assertions, compiled from the mart declarations.

A check is a query returning the offending rows; it passes when it returns none, and its
failure count is the number of rows it returns, with dbt's meaning for each generic test:
- not_null: the rows whose column is NULL;
- unique: the distinct values (NULL ignored) that occur more than once;
- accepted_values: the distinct values (NULL ignored) outside the list;
- relationships: the child rows (NULL ignored) whose value is missing from the parent.

The generic tests are templates in sql/_checks/<test>.sql, written like dbt's own test SQL.
Singular checks are sql/<mart>/checks/<name>.sql files. `compile_all()` is the one list of
checks; migrations store it in bioloupe_views.check_definition, where every runner (the CLI,
refresh-views, pg_cron and pytest) executes it through bioloupe_views.run_checks().
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import definitions
from .errors import UserError

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


def _generic(mart: definitions.Mart, decl: dict) -> Check:
    test = decl.get("test")
    if test not in GENERIC_TESTS:
        raise UserError(f"{mart.name}/mart.toml: unknown test {test!r}; use one of {GENERIC_TESTS}")
    column = decl["column"]
    values = {"model": f"{definitions.MART_SCHEMA}.{mart.name}", "column": column}
    name = f"{test}_{mart.name}_{_slug(column)}"
    if test == "accepted_values":
        values["values"] = ", ".join(_literal(v) for v in decl["values"])
    if test == "relationships":
        values["to"] = decl["to"]
        values["field"] = decl["field"]
        name += f"__{decl['field']}__{decl['to']}"
    template = (definitions.SQL_DIR / "_checks" / f"{test}.sql").read_text()
    return Check(decl.get("name", name), mart.name, test, _severity(decl.get("severity"), name),
                 _render(template, values))


def _singular(mart: definitions.Mart, path) -> Check:
    text = path.read_text()
    match = _SEVERITY_COMMENT.search(text)
    return Check(path.stem, mart.name, "singular", _severity(match and match.group(1), path.stem),
                 text.strip())


def _severity(value: str | None, name: str) -> str:
    severity = value or "error"
    if severity not in SEVERITIES:
        raise UserError(f"check {name}: severity must be one of {SEVERITIES}, got {severity!r}")
    return severity


def compile_all() -> list[Check]:
    """Every check of every mart, in mart order then declaration order."""
    result: list[Check] = []
    for mart in definitions.marts().values():
        result.extend(_generic(mart, decl) for decl in mart.check_declarations)
        result.extend(_singular(mart, path) for path in mart.singular_check_files)
    names = [c.name for c in result]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise UserError(f"check names must be unique; give these a `name`: {', '.join(duplicated)}")
    return result


def sync(conn) -> int:
    """Store the compiled checks in bioloupe_views.check_definition (inside the caller's
    transaction), replacing what was there. Returns how many checks are stored."""
    compiled = compile_all()
    with conn.cursor() as cur:
        cur.execute("DELETE FROM bioloupe_views.check_definition")
        for position, check in enumerate(compiled):
            cur.execute(
                "INSERT INTO bioloupe_views.check_definition"
                " (name, mart, test, severity, position, sql) VALUES (%s, %s, %s, %s, %s, %s)",
                (check.name, check.mart, check.test, check.severity, position, check.sql),
            )
    return len(compiled)


def run(conn, marts: list[str]) -> list[dict]:
    """Run the stored checks of `marts` (in order) through bioloupe_views.run_checks()."""
    results = []
    with conn.cursor() as cur:
        for mart in marts:
            cur.execute("SELECT to_jsonb(r) FROM bioloupe_views.run_checks(%s) r", (mart,))
            results.extend(row[0] for row in cur.fetchall())
    return results
