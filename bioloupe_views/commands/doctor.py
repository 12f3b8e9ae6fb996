"""`bioloupe-views doctor`: which source indexes the marts' query plans use, and which of
them this database lacks.

The sources belong to other systems, so this project never changes them: doctor prints each
missing index as a `CREATE INDEX CONCURRENTLY` statement for the owner to run (concurrently,
so building it does not block their writers), and applies nothing. The list of indexes is a
fact about each mart version's SQL and lives beside it, in its mart.toml (`source_indexes`,
read through definitions.py; the latest version's); an index counts as present when a valid btree index on the table starts with
those columns (sql/_queries/source_index.sql). Works before `alembic upgrade head` too: it
reads only the sources and the system catalog. Exit code 0 whether or not indexes are
missing: the output is advice. A registered mart missing from the database is an error,
after the report (missing_marts.py), and so is an installed view bound to an object some
role planted (binding.installed).

Connected to a hot standby, doctor says so first (the refresh, the migrations and those
indexes belong on the primary) and adds what matters to the marts' readers there: the
standby's hot_standby_feedback and max_standby_streaming_delay, and the queries replay has
already cancelled (standby.py).

A database behind the code's migrations (or ahead of them) is one line first, on stderr
(revision.py), as in status and refresh-views.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
from psycopg2 import sql

from .. import (binding, contract, definitions, missing_marts, revision, sessions,
               source_tracking, standby)
from .common import dsn_option, friendly_errors
from ..config import describe, resolve_dsn
from ..db import connect
from ..errors import ContractError, NotMigratedError

SOURCE_INDEX_QUERY = definitions.SQL_DIR / "_queries" / "source_index.sql"


@dataclass
class Finding:
    table: str
    columns: tuple[str, ...]
    marts: list[str]
    reasons: list[str]
    existing: str | None       # the name of the index that serves it, if any
    schema: str = contract.DEFAULT_SCHEMA  # the source schema the table was looked up in

    @property
    def label(self) -> str:
        return f"{self.table} ({', '.join(self.columns)})"


def wanted() -> list[Finding]:
    """Every source index some mart's plan uses, once, with the marts that use it."""
    found: dict[tuple, Finding] = {}
    for mart in definitions.marts().values():
        for index in mart.latest.source_indexes:
            key = (index.table, index.columns)
            finding = found.setdefault(key, Finding(index.table, index.columns, [], [], None))
            finding.marts.append(mart.name)
            if index.why:
                finding.reasons.append(index.why)
    return list(found.values())


def diagnose(conn) -> tuple[str, list[Finding]]:
    """The source schema, and the wanted source indexes, each with the existing index that
    serves it (or None)."""
    findings = wanted()
    with conn.cursor() as cur:
        schema = contract.resolve(cur, contract.configured())
    problems = contract.missing(conn, schema)
    absent = sorted({f.table for f in findings if f.table in problems})
    if absent:
        raise ContractError(contract.describe_missing(problems, schema))
    query = SOURCE_INDEX_QUERY.read_text()
    with conn.cursor() as cur:
        for finding in findings:
            finding.schema = schema
            cur.execute(query, {"schema": schema, "table": finding.table,
                                "columns": list(finding.columns)})
            row = cur.fetchone()
            finding.existing = row[0] if row else None
    return schema, findings


def create_statement(conn, finding: Finding) -> str:
    """CREATE INDEX CONCURRENTLY for a missing index, with every identifier quoted."""
    name = f"{finding.table}_{'_'.join(finding.columns)}_idx"[:63]
    return sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {schema}.{table} ({columns});").format(
        name=sql.Identifier(name),
        schema=sql.Identifier(finding.schema),
        table=sql.Identifier(finding.table),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in finding.columns),
    ).as_string(conn)


@click.command("doctor")
@dsn_option
@friendly_errors
def doctor_command(dsn):
    """Report the source indexes the marts' plans use; print the missing ones as SQL."""
    dsn = resolve_dsn(dsn)
    conn = connect(dsn)
    try:
        revision.warn(conn)
        replica = standby.state(conn) if standby.in_recovery(conn) else None
        schema, findings = diagnose(conn)
        statements = [create_statement(conn, f) for f in findings if f.existing is None]
        tracking = _tracking(conn)
        missing = missing_marts.find(conn)
        leftover = sessions.find(conn)
        with conn.cursor() as cur:
            bound = binding.installed(cur)
    finally:
        conn.close()
    if replica:
        click.echo(f"Note: {describe(dsn)} is a hot standby (read-only); last replayed commit "
                   f"{replica.last_replay or 'none yet'}.")
        click.echo("")
    click.echo(f"Source indexes the marts' query plans use, on {describe(dsn)} "
               f"(schema {schema}):")
    if not findings:
        click.echo("  none: every mart's plan needs only the sources' primary keys")
    for f in findings:
        state = f"ok ({f.existing})" if f.existing else "MISSING"
        why = f" - {'; '.join(f.reasons)}" if f.reasons else ""
        click.echo(f"  {state:<32} {f.label} for {', '.join(f.marts)}{why}")
    click.echo("")
    if statements:
        click.echo(f"{len(statements)} missing. The sources are yours, so nothing was changed; "
                   "to add them, run:")
        for statement in statements:
            click.echo(statement)
    else:
        click.echo("No source index is missing.")
    if tracking is not None:
        _print_tracking(tracking)
    for line in sessions.report_lines(leftover):
        click.echo(line)
    if replica:
        click.echo("")
        click.echo("Reading the marts on this hot standby:")
        for line in replica.advice():
            click.echo(f"  {line}")
    missing_marts.require_none(missing)  # not advice: the mart is gone
    if bound:  # nor this: whoever refreshes or reads the view runs what some role planted
        more = f" (and {len(bound) - 1} more)" if len(bound) > 1 else ""
        raise binding.BindingError(
            f"{bound[0].describe()}{more}, which is neither PostgreSQL's own nor the sources' nor "
            "this project's, so it runs with the rights of whoever refreshes or reads it; drop or "
            f"move {bound[0].object} (and check who created it), then run `alembic upgrade head`")


def _tracking(conn) -> list[source_tracking.Source] | None:
    """The sources and their change tracking; None before the migrations that add it."""
    with conn.cursor() as cur:
        try:
            return source_tracking.sources(cur)[1]
        except NotMigratedError:
            return None


def _print_tracking(found: list[source_tracking.Source]) -> None:
    untracked = [s for s in found if not s.tracked]
    click.echo("")
    click.echo("Source change tracking (refresh-views --changed-only):")
    for s in found:
        if s.tracked:
            since = f"since {s.since}" if s.since else "since now (recorded by the next run)"
            click.echo(f"  tracked {s.label} {since}")
    if not untracked:
        click.echo(f"  all {len(found)} sources are tracked")
        return
    for s in untracked:
        how = ("not tracked" if s.trackable
               else f"cannot be tracked ({s.why_untrackable})")
        click.echo(f"  UNTRACKED {s.label}: {how}")
    click.echo(f"{len(untracked)} of {len(found)} sources untracked: marts reading them are "
               "always refreshed; `bioloupe-views track-sources` prints the statements.")
