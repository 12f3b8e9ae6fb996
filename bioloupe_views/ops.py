"""The migration API: Alembic operations for marts, in the spirit of Scenic.

    op.check_source_contract()
    op.create_project_schema(version=1)
    op.change_project_schema(from_version=1, to_version=2)
    op.create_materialized_view("mv_drug_trials", version=1)
    op.drop_materialized_view("mv_drug_trials")
    op.replace_materialized_view("mv_development_programs", version=2)  # dependents kept

A migration names a mart and a version; the operation takes that version whole from
bioloupe_views/sql/<mart>/v<version>/ (definitions.py): the view is created populated, with
the version's indexes and its checks, and the version is recorded in bioloupe_views.mart.
Importing this module registers the operations on Alembic's `op` (migrations/env.py does).
Each mart created or replaced is logged (logger bioloupe_views.ops, INFO) with its rows and
seconds: at scale a migration runs for minutes, and alembic.ini's logging shows where it is.
"""

from __future__ import annotations

import logging
import time

import psycopg2.errors
from alembic.operations import MigrateOperation, Operations
from alembic.util import CommandError
from psycopg2 import sql

from . import (binding, checks, contract, cron_job, definitions, project_schema, refresh_lock,
               replace, roles)
from .errors import UserError
from .definitions import in_project

log = logging.getLogger(__name__)


def _log_built(cur, verb: str, mart: str, what: str, started: float) -> None:
    """One progress line for a mart just built: its rows as ANALYZE counted them (the
    estimate status shows), and the seconds it took."""
    cur.execute("SELECT c.relispopulated, c.reltuples::bigint FROM pg_catalog.pg_class c"
                " WHERE c.oid = pg_catalog.to_regclass(%s)",
                (sql.Identifier(definitions.MART_SCHEMA, mart).as_string(cur),))
    row = cur.fetchone()
    rows = ("unpopulated" if row and not row[0] else
            f"{row[1]:,} rows (est.)" if row and row[1] >= 0 else "rows unknown")
    log.info("%s mart %s (%s): %s in %.2fs", verb, mart, what, rows, time.monotonic() - started)


def _cursor(operations: Operations):
    return operations.get_bind().connection.dbapi_connection.cursor()


def _execute(operations: Operations, statement) -> None:
    """Run a psycopg2.sql composition (or plain string) on the migration's connection."""
    with _cursor(operations) as cur:
        cur.execute(statement)


def _invoke_with(function):
    """An operation's implementation that turns UserError into Alembic's one-line error."""
    def implementation(operations: Operations, operation: MigrateOperation):
        try:
            return function(operations, operation)
        except UserError as exc:
            raise CommandError(str(exc)) from None
    return implementation


@Operations.register_operation("check_source_contract")
class CheckSourceContractOp(MigrateOperation):
    """Stop, naming every missing table and column, before anything is created."""

    @classmethod
    def check_source_contract(cls, operations: Operations) -> None:
        return operations.invoke(cls())


@Operations.implementation_for(CheckSourceContractOp)
def _check_source_contract(operations: Operations, operation: CheckSourceContractOp) -> None:
    conn = operations.get_bind().connection.dbapi_connection
    with conn.cursor() as cur:
        schema = contract.current(cur)
    problems = contract.missing(conn, schema)
    if problems:
        raise CommandError(contract.describe_missing(problems, schema))


@Operations.register_operation("create_project_schema")
class CreateProjectSchemaOp(MigrateOperation):
    """The bioloupe_views schema: registry, checks, run log and the refresh engine."""

    def __init__(self, version: int):
        self.version = version

    @classmethod
    def create_project_schema(cls, operations: Operations, version: int) -> None:
        return operations.invoke(cls(version))


def _create_project_schema(operations: Operations, operation: CreateProjectSchemaOp) -> None:
    for statement in project_schema.create_statements(operation.version):
        _execute(operations, statement)
    log.info("created schema %s (version %s)", definitions.PROJECT_SCHEMA, operation.version)


Operations.implementation_for(CreateProjectSchemaOp)(_invoke_with(_create_project_schema))


@Operations.register_operation("change_project_schema")
class ChangeProjectSchemaOp(MigrateOperation):
    """Take the bioloupe_views schema one version up or down in place: its routines are
    replaced, its tables altered, its run history kept. Every mart's checks are
    reinstalled in the form the new version runs."""

    def __init__(self, from_version: int, to_version: int):
        self.from_version, self.to_version = from_version, to_version

    @classmethod
    def change_project_schema(cls, operations: Operations, from_version: int,
                              to_version: int) -> None:
        return operations.invoke(cls(from_version, to_version))


def _change_project_schema(operations: Operations, operation: ChangeProjectSchemaOp) -> None:
    with _cursor(operations) as cur:
        # Held to the end of the migration's session: a run beside the change would deadlock
        # with it or run routines halfway replaced.
        refresh_lock.hold(cur, "change the project schema")
        cur.execute(in_project("SELECT name FROM {project}.mart ORDER BY name"))
        for (mart,) in cur.fetchall():
            checks.uninstall(cur, mart)
        for statement in project_schema.change_statements(operation.from_version,
                                                          operation.to_version):
            cur.execute(statement)
        checks.install_all(cur)
        roles.regrant_refreshers(cur)
        log.info("changed schema %s from version %s to %s", definitions.PROJECT_SCHEMA,
                 operation.from_version, operation.to_version)


Operations.implementation_for(ChangeProjectSchemaOp)(_invoke_with(_change_project_schema))


@Operations.register_operation("rebind_materialized_views")
class RebindMaterializedViewsOp(MigrateOperation):
    """Rebuild in place, at its installed version, every mart bound to an object that is
    neither PostgreSQL's, the sources' nor this project's (binding.py): marts created before
    their bindings were verified may call a function some role had planted. The rebuilt
    mart is verified like a new one, so one still shadowed stops the migration, named."""

    @classmethod
    def rebind_materialized_views(cls, operations: Operations) -> None:
        return operations.invoke(cls())


def _rebind_materialized_views(operations: Operations, operation: RebindMaterializedViewsOp) -> None:
    rebind_installed(operations.get_bind().connection.dbapi_connection)


def rebind_installed(conn) -> list[str]:
    """Rebuild what an earlier release bound to a planted object: each such mart in place
    at its installed version, and the checks of each mart with such a check view. Run by
    0006 and at the end of every migration run, so a repair needs no new revision once the
    object has been moved out of the way. Returns what was rebuilt."""
    with conn.cursor() as cur:
        cur.execute(in_project("SELECT to_regclass('{project_text}.mart_check') IS NOT NULL"))
        if not cur.fetchone()[0]:
            return []
        cur.execute(in_project("SELECT m.name, m.version, c.oid FROM {project}.mart m"
                               " JOIN pg_catalog.pg_class c ON c.relname = m.name AND c.relkind = 'm'"
                               " AND c.relnamespace = %s::regnamespace ORDER BY m.name"),
                    (definitions.MART_SCHEMA,))
        marts = [(name, version) for name, version, oid in cur.fetchall()
                 if binding.foreign(cur, [oid])]
        cur.execute(in_project("SELECT DISTINCT m.name, m.version, c.oid FROM {project}.mart_check k"
                               " JOIN {project}.mart m ON m.name = k.mart"
                               " JOIN pg_catalog.pg_class c ON c.relname IN"
                               " (k.relation, pg_catalog.to_jsonb(k)->>'batch_relation')"
                               " AND c.relnamespace = %s::regnamespace ORDER BY m.name"),
                    (definitions.CHECKS_SCHEMA,))
        checked = sorted({(name, version) for name, version, oid in cur.fetchall()
                          if binding.foreign(cur, [oid])} - set(marts))
    for name, version in marts:
        replace.replace(conn, name, version)
    with conn.cursor() as cur:
        for name, version in checked:
            checks.install(cur, definitions.get(name).version(version))
    return [name for name, _ in marts + checked]


Operations.implementation_for(RebindMaterializedViewsOp)(_invoke_with(_rebind_materialized_views))


@Operations.register_operation("drop_project_schema")
class DropProjectSchemaOp(MigrateOperation):
    """Remove the bioloupe_views schema (at version 1) and the pg_cron job that calls it.
    Object by object, never CASCADE: an object of someone else's built on the run log or
    in the schema stops the downgrade, named, with nothing changed."""

    @classmethod
    def drop_project_schema(cls, operations: Operations) -> None:
        return operations.invoke(cls())


def _drop_project_schema(operations: Operations, operation: DropProjectSchemaOp) -> None:
    with _cursor(operations) as cur:
        cron_job.unschedule_all(cur)
        try:
            for statement in project_schema.drop_statements():
                cur.execute(statement)
        except psycopg2.errors.DependentObjectsStillExist as exc:
            detail = (exc.diag.message_detail or "").replace("\n", "; ")
            raise UserError(f"cannot remove schema {definitions.PROJECT_SCHEMA}: objects that "
                            f"this project did not create depend on it ({detail}); drop or move "
                            "them first, then downgrade again") from None


Operations.implementation_for(DropProjectSchemaOp)(_invoke_with(_drop_project_schema))


@Operations.register_operation("create_materialized_view")
class CreateMaterializedViewOp(MigrateOperation):
    """Create a mart at a version: populated, with the version's indexes and checks."""

    def __init__(self, name: str, version: int, with_data: bool = True):
        self.name, self.version, self.with_data = name, version, with_data

    @classmethod
    def create_materialized_view(cls, operations: Operations, name: str, version: int,
                                 with_data: bool = True) -> None:
        return operations.invoke(cls(name, version, with_data))


def _create_materialized_view(operations: Operations, operation: CreateMaterializedViewOp) -> None:
    version = definitions.get(operation.name).version(operation.version)
    started = time.monotonic()
    with _cursor(operations) as cur:
        binding.create_mart(cur, version, with_data=operation.with_data)
        if version.description:
            cur.execute(sql.SQL("COMMENT ON MATERIALIZED VIEW {} IS {}").format(
                sql.Identifier(definitions.MART_SCHEMA, version.mart),
                sql.Literal(version.description)))
        cur.execute(in_project("INSERT INTO {project}.mart (name, version) VALUES (%s, %s)"),
                    (version.mart, version.number))
        checks.install(cur, version)
        _log_built(cur, "created", version.mart, f"version {version.number}", started)
    grant_reader(operations, version.mart)


Operations.implementation_for(CreateMaterializedViewOp)(_invoke_with(_create_materialized_view))


def grant_reader(operations: Operations, name: str) -> None:
    """GRANT SELECT on the mart to the reader role of this run (`-x reader_role=...` or
    BIOLOUPE_READER_ROLE, validated by migrations/env.py), if one is configured."""
    role = operations.get_context().opts.get(roles.CONTEXT_OPTION)
    if role:
        _execute(operations, roles.grant_select(name, role))


@Operations.register_operation("drop_materialized_view")
class DropMaterializedViewOp(MigrateOperation):
    def __init__(self, name: str):
        self.name = name

    @classmethod
    def drop_materialized_view(cls, operations: Operations, name: str) -> None:
        return operations.invoke(cls(name))


def _drop_materialized_view(operations: Operations, operation: DropMaterializedViewOp) -> None:
    mart = definitions.get(operation.name)
    with _cursor(operations) as cur:
        checks.uninstall(cur, mart.name)
        try:
            cur.execute(sql.SQL("DROP MATERIALIZED VIEW IF EXISTS {}").format(
                sql.Identifier(definitions.MART_SCHEMA, mart.name)))
        except psycopg2.errors.DependentObjectsStillExist as exc:
            # Never CASCADE: someone's view on a mart is theirs to drop or move.
            detail = (exc.diag.message_detail or "").replace("\n", "; ")
            raise UserError(f"cannot drop materialized view {definitions.MART_SCHEMA}."
                            f"{mart.name}: objects that this project did not create depend on "
                            f"it ({detail}); drop or move them first, then run the migration "
                            "again") from None
        cur.execute(in_project("DELETE FROM {project}.mart WHERE name = %s"), (mart.name,))


Operations.implementation_for(DropMaterializedViewOp)(_invoke_with(_drop_materialized_view))


@Operations.register_operation("replace_materialized_view")
class ReplaceMaterializedViewOp(MigrateOperation):
    """Replace a mart with another version (its query, indexes and checks): every view and
    materialized view above it is dropped and rebuilt, populated, with its indexes, grants
    and comments (bioloupe_views/replace.py). `side_by_side=True` builds the new version
    and the rebuilt dependents before taking any lock, so readers wait only for the swap;
    put it last in the migration, or inside `op.get_context().autocommit_block()` (see
    replace.py). Returns a replace.Replacement with the timings."""

    def __init__(self, name: str, version: int, side_by_side: bool = False,
                 lock_timeout: str | None = "2s", lock_retries: int = 10):
        self.name, self.version, self.side_by_side = name, version, side_by_side
        self.lock_timeout, self.lock_retries = lock_timeout, lock_retries

    @classmethod
    def replace_materialized_view(cls, operations: Operations, name: str, version: int,
                                  side_by_side: bool = False, lock_timeout: str | None = "2s",
                                  lock_retries: int = 10):
        return operations.invoke(cls(name, version, side_by_side, lock_timeout, lock_retries))


def _replace_materialized_view(operations: Operations, operation: ReplaceMaterializedViewOp):
    started = time.monotonic()
    result = replace.replace(
        operations.get_bind().connection.dbapi_connection, operation.name, operation.version,
        side_by_side=operation.side_by_side, lock_timeout=operation.lock_timeout,
        lock_retries=operation.lock_retries)
    with _cursor(operations) as cur:
        rebuilt = f", dependents rebuilt: {', '.join(result.dependents)}" if result.dependents else ""
        _log_built(cur, "replaced", operation.name,
                   f"version {result.from_version} -> {result.to_version}, readers blocked "
                   f"{result.swap_seconds:.2f}s{rebuilt}", started)
    return result


Operations.implementation_for(ReplaceMaterializedViewOp)(_invoke_with(_replace_materialized_view))
