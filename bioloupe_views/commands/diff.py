"""`bioloupe-views diff`: does each mart in the database still match the SQL files of the
version it was migrated to?

Drift is what a migration did not do: a definition edited by hand in production, an index
dropped or added, a check changed, dropped or added. A version is compared whole:
- the query, the one robust way: the version's query.sql is created as a temporary view (in
  a transaction that is rolled back) and PostgreSQL deparses both, so formatting, comments
  and spelling never count, only the query;
- the indexes, with the ones the version declares (names, columns, uniqueness);
- the checks, with the ones the version declares: names, severity, and each check's query
  deparsed the same way as the mart's.
An installed view bound to an object that is neither PostgreSQL's, the sources' nor this
project's (binding.installed: one some role planted) is reported too, one line each; and a
version's SQL that the probe would now bind to such an object is named as that (a migration
would refuse it), not as a hand edit of the installed view.
Exit 1 when anything drifted or is so bound, 0 when everything matches.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field

import click
import psycopg2
from psycopg2 import sql

from .. import binding, checks, definitions, selection
from .common import dsn_option, friendly_errors
from ..config import resolve_dsn
from ..db import connect, first_line, require_migrated
from ..errors import UserError
from ..definitions import in_project

_PROBE = "bioloupe_views_diff_probe"

_INDEXES_SQL = """
SELECT i.relname, x.indisunique, x.indisvalid, am.amname,
       x.indpred IS NOT NULL OR x.indexprs IS NOT NULL OR x.indnatts <> x.indnkeyatts,
       ARRAY(SELECT a.attname
             FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
             WHERE k.n <= x.indnkeyatts ORDER BY k.n),
       pg_get_indexdef(i.oid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_am am ON am.oid = i.relam
WHERE x.indrelid = %s
ORDER BY i.relname
"""


@dataclass
class MartDrift:
    mart: str
    version: int
    problems: list[str] = field(default_factory=list)
    definition_diff: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.problems)


@dataclass
class Report:
    marts: list[MartDrift]
    pending: list[str]  # differences a migration will remove: not drift

    @property
    def drifted(self) -> list[MartDrift]:
        return [m for m in self.marts if m.drifted]


def compare(conn, names: tuple[str, ...] = ()) -> Report:
    """Compare every registered mart (or those named) with its migrated version's files.
    `conn` must not be in autocommit: the probes are rolled back."""
    require_migrated(conn)
    with conn.cursor() as cur:
        cur.execute(in_project("SELECT name, version FROM {project}.mart ORDER BY name"))
        registered = dict(cur.fetchall())
    for name in names:
        if name not in registered:
            if not registered or name in definitions.marts():
                raise UserError(f"mart {name!r} is not in this database yet: "
                                "run `alembic upgrade head`")
            raise selection.unknown("mart", name, registered)
    selected = [n for n in registered if not names or n in names]
    pending = [f"{name}: in the package but not in the database (run `alembic upgrade head`)"
               for name in definitions.marts() if name not in registered and not names]
    results = []
    for name in selected:
        result = MartDrift(name, registered[name])
        _compare_one(conn, result, pending)
        results.append(result)
    conn.rollback()
    return Report(results, pending)


def _compare_one(conn, result: MartDrift, pending: list[str]) -> None:
    name, version = result.mart, result.version
    with conn.cursor() as cur:
        cur.execute("SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n"
                    " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                    (definitions.MART_SCHEMA, name))
        row = cur.fetchone()
    if row is None:
        result.problems.append(f"missing view: {definitions.MART_SCHEMA}.{name} does not exist")
        return
    oid, kind = row
    if kind != "m":
        result.problems.append(f"{definitions.MART_SCHEMA}.{name} is not a materialized view "
                               f"(relkind {kind!r})")
        return
    try:
        mart = definitions.get(name)
        target = mart.version(version)
    except UserError as exc:
        result.problems.append(f"no SQL files for the migrated version: {exc}")
        return
    if mart.latest_version > version:
        pending.append(f"{name}: v{mart.latest_version} is newer than the migrated "
                       f"v{version} (a migration not yet applied?)")
    expected = _deparse(conn, target.query)
    if isinstance(expected, Shadowed):
        result.problems.append(f"v{version}/query.sql {expected}")
    elif isinstance(expected, Exception):
        result.problems.append(f"v{version}/query.sql does not compile against this "
                               f"database: {first_line(expected)}")
    else:
        _compare_definition(conn, result, oid, expected)
    _compare_indexes(conn, result, oid, target)
    _compare_checks(conn, result, target)


class Shadowed(Exception):
    """The version's SQL, bound here as a migration would bind it, calls an object some role
    planted (binding.py): not drift of the installed view, but what a migration would refuse."""


def _deparse(conn, body: str) -> str | Exception:
    """PostgreSQL's own text of a query, bound as the project binds its views; Shadowed when
    that binding would take an object that is not PostgreSQL's, the sources' nor ours."""
    with conn.cursor() as cur:
        cur.execute("SAVEPOINT bioloupe_views_diff")
        try:
            with definitions.binding_search_path(cur):
                cur.execute(definitions.create_view_statement(
                    sql.Identifier(_PROBE), body, materialized=False, temporary=True))
            cur.execute("SELECT pg_get_viewdef(%s::regclass), %s::regclass::oid",
                        (f"pg_temp.{_PROBE}",) * 2)
            text, oid = cur.fetchone()
            shadowing = binding.foreign(cur, [oid])
            if shadowing:
                first = shadowing[0]
                return Shadowed(f"would now be bound to {first.object} (schema {first.schema}, "
                                f"owner {first.owner}), not PostgreSQL's own: a migration would "
                                "refuse it; drop or move that object")
            return text
        except psycopg2.Error as exc:
            return exc
        finally:
            cur.execute("ROLLBACK TO SAVEPOINT bioloupe_views_diff")


def _viewdef(conn, oid: int) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_get_viewdef(%s)", (oid,))
        return cur.fetchone()[0]


def _compare_definition(conn, result: MartDrift, oid: int, expected: str) -> None:
    actual = _viewdef(conn, oid)
    if expected != actual:
        result.problems.append(f"definition differs from v{result.version}/query.sql "
                               "(edited by hand?)")
        result.definition_diff = list(difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), f"v{result.version}/query.sql",
            "database", lineterm=""))


def _compare_checks(conn, result: MartDrift, target: definitions.MartVersion) -> None:
    """The installed checks against the version's: the same names, severities and queries."""
    with conn.cursor() as cur:
        cur.execute(in_project("SELECT to_regclass('{project_text}.mart_check') IS NOT NULL"))
        if not cur.fetchone()[0]:
            return  # an older project schema keeps no check views to compare
        cur.execute(in_project("SELECT mc.name, mc.severity, mc.version, to_regclass(format('%%I.%%I', %s::text,"
                    " mc.relation))::oid FROM {project}.mart_check mc WHERE mc.mart = %s"),
                    (definitions.CHECKS_SCHEMA, target.mart))
        installed = {name: rest for name, *rest in cur.fetchall()}
    declared = {check.name: check for check in checks.compile_version(target)}
    for name, check in declared.items():
        if name not in installed:
            result.problems.append(f"missing check {name} (declared by v{target.number})")
            continue
        severity, version, oid = installed[name]
        if oid is None:
            result.problems.append(f"check {name}: its view {definitions.CHECKS_SCHEMA}."
                                   f"{definitions.check_relation(name)} is missing")
            continue
        if severity != check.severity or version != target.number:
            result.problems.append(f"check {name} differs: declared severity {check.severity} "
                                   f"at v{target.number}, database has {severity} at v{version}")
        expected = _deparse(conn, check.sql)
        if isinstance(expected, Shadowed):
            result.problems.append(f"check {name}: its query {expected}")
        elif isinstance(expected, Exception):
            result.problems.append(f"check {name} does not compile against this database: "
                                   f"{first_line(expected)}")
        elif expected != _viewdef(conn, oid):
            result.problems.append(f"check {name}: its query differs from v{target.number}'s "
                                   "(edited by hand?)")
    for name in installed:
        if name not in declared:
            result.problems.append(f"extra check {name} (not declared by v{target.number})")


def _compare_indexes(conn, result: MartDrift, oid: int, target: definitions.MartVersion) -> None:
    with conn.cursor() as cur:
        cur.execute(_INDEXES_SQL, (oid,))
        found = {row[0]: row[1:] for row in cur.fetchall()}
    declared = {index.name: index for index in target.indexes}
    for name, index in declared.items():
        wanted = f"{'UNIQUE ' if index.unique else ''}({', '.join(index.columns)})"
        if name not in found:
            result.problems.append(f"missing index {name} {wanted}")
            continue
        unique, valid, method, special, columns, definition = found[name]
        if not valid:
            result.problems.append(f"index {name} is invalid (a failed CREATE INDEX "
                                   "CONCURRENTLY?): drop and recreate it")
        elif (unique != index.unique or tuple(columns) != tuple(index.columns)
              or method != "btree" or special):
            result.problems.append(f"index {name} differs: declared {wanted}, "
                                   f"database has {definition}")
    for name, (*_, definition) in found.items():
        if name not in declared:
            result.problems.append(f"extra index {name} (not declared by v{target.number}): "
                                   f"{definition}")


def print_report(report: Report, bound: list[binding.Foreign] = ()) -> None:
    for item in report.marts:
        if not item.drifted:
            click.echo(f"{item.mart} (v{item.version}): " + click.style("ok", fg="green"))
            continue
        click.echo(f"{item.mart} (v{item.version}): " + click.style("DRIFT", fg="red"))
        for problem in item.problems:
            click.echo(f"  - {problem}")
        for line in item.definition_diff:
            click.echo(f"      {line}")
    for note in report.pending:
        click.echo(f"note: {note}")
    for foreign in bound:
        click.echo(click.style("BOUND", fg="red") + f" {foreign.describe()}")
    drifted = len(report.drifted)
    if bound:
        plural = "s" if len(bound) > 1 else ""
        click.echo(f"\n{len(bound)} binding{plural} to objects that are neither PostgreSQL's, the "
                   "sources' nor this project's: they run with the rights of whoever refreshes "
                   "or reads them; drop or move those objects (and check who created them), "
                   "then run `alembic upgrade head`.")
    if drifted:
        click.echo(f"\nDrift in {drifted} of {len(report.marts)} marts: fix the database (or "
                   "write a migration that makes the files say what the database does).")
    elif not bound:
        click.echo(f"\nNo drift: {len(report.marts)} marts match their migrated SQL files.")


@click.command("diff")
@dsn_option
@click.argument("marts", nargs=-1, metavar="[MART]...")
@friendly_errors
def diff_command(dsn, marts):
    """Compare each mart in the database with the SQL files of its migrated version: a
    hand-edited definition, a missing or extra index. Exit 1 when anything drifted."""
    conn = connect(resolve_dsn(dsn), autocommit=False)
    try:
        report = compare(conn, marts)
        with conn.cursor() as cur:
            bound = binding.installed(cur)
        conn.rollback()
    finally:
        conn.close()
    print_report(report, bound)
    sys.exit(1 if report.drifted or bound else 0)
