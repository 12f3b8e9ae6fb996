"""The migration API: Alembic operations for marts, in the spirit of Scenic.

    op.check_source_contract()
    op.create_project_schema(version=1)
    op.create_materialized_view("mv_drug_trials", version=1)
    op.drop_materialized_view("mv_drug_trials")
    op.replace_materialized_view("mv_development_programs", version=2)  # dependents kept

A migration names a mart and the version of its SQL file; the operation loads
bioloupe_views/sql/<mart>/v<version>.sql, creates the view populated, creates the indexes
declared in mart.toml and records the version in bioloupe_views.mart. Importing this module
registers the operations on Alembic's `op` (migrations/env.py does).
"""

from __future__ import annotations

from alembic.operations import MigrateOperation, Operations
from alembic.util import CommandError
from psycopg2 import sql

from . import contract, definitions, replace, roles
from .errors import UserError


def _execute(operations: Operations, statement) -> None:
    """Run a psycopg2.sql composition (or plain string) on the migration's connection."""
    bind = operations.get_bind()
    if isinstance(statement, sql.Composable):
        statement = statement.as_string(bind.connection.dbapi_connection)
    bind.exec_driver_sql(statement.replace("%", "%%"))


def _mart_ident(name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(definitions.MART_SCHEMA), sql.Identifier(name))


def create_indexes(operations: Operations, mart: definitions.Mart) -> None:
    """The indexes mart.toml declares (one definition, shared with replace.py)."""
    for statement in replace.declared_indexes(mart):
        _execute(operations, statement)


@Operations.register_operation("check_source_contract")
class CheckSourceContractOp(MigrateOperation):
    """Stop, naming every missing table and column, before anything is created."""

    @classmethod
    def check_source_contract(cls, operations: Operations) -> None:
        return operations.invoke(cls())


@Operations.implementation_for(CheckSourceContractOp)
def _check_source_contract(operations: Operations, operation: CheckSourceContractOp) -> None:
    problems = contract.missing(operations.get_bind().connection.dbapi_connection)
    if problems:
        raise CommandError(contract.describe_missing(problems))


@Operations.register_operation("create_project_schema")
class CreateProjectSchemaOp(MigrateOperation):
    """The bioloupe_views schema: registry, checks, run log and the refresh functions."""

    def __init__(self, version: int):
        self.version = version

    @classmethod
    def create_project_schema(cls, operations: Operations, version: int) -> None:
        return operations.invoke(cls(version))


@Operations.implementation_for(CreateProjectSchemaOp)
def _create_project_schema(operations: Operations, operation: CreateProjectSchemaOp) -> None:
    _execute(operations, definitions.project_sql(f"v{operation.version}"))


@Operations.register_operation("drop_project_schema")
class DropProjectSchemaOp(MigrateOperation):
    @classmethod
    def drop_project_schema(cls, operations: Operations) -> None:
        return operations.invoke(cls())


@Operations.implementation_for(DropProjectSchemaOp)
def _drop_project_schema(operations: Operations, operation: DropProjectSchemaOp) -> None:
    _execute(operations, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
        sql.Identifier(definitions.PROJECT_SCHEMA)))


@Operations.register_operation("create_materialized_view")
class CreateMaterializedViewOp(MigrateOperation):
    """Create a mart from its versioned SQL, populated, with its declared indexes."""

    def __init__(self, name: str, version: int, with_data: bool = True):
        self.name, self.version, self.with_data = name, version, with_data

    @classmethod
    def create_materialized_view(cls, operations: Operations, name: str, version: int,
                                 with_data: bool = True) -> None:
        return operations.invoke(cls(name, version, with_data))


@Operations.implementation_for(CreateMaterializedViewOp)
def _create_materialized_view(operations: Operations, operation: CreateMaterializedViewOp) -> None:
    mart = definitions.get(operation.name)
    body = mart.sql(operation.version).rstrip().rstrip(";")
    _execute(operations, sql.SQL("CREATE MATERIALIZED VIEW {mart} AS\n{body}\nWITH {data}").format(
        mart=_mart_ident(mart.name), body=sql.SQL(body),
        data=sql.SQL("DATA" if operation.with_data else "NO DATA")))
    create_indexes(operations, mart)
    if mart.description:
        _execute(operations, sql.SQL("COMMENT ON MATERIALIZED VIEW {} IS {}").format(
            _mart_ident(mart.name), sql.Literal(mart.description)))
    _execute(operations, sql.SQL(
        "INSERT INTO bioloupe_views.mart (name, version) VALUES ({}, {})").format(
        sql.Literal(mart.name), sql.Literal(operation.version)))
    grant_reader(operations, mart.name)


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


@Operations.implementation_for(DropMaterializedViewOp)
def _drop_materialized_view(operations: Operations, operation: DropMaterializedViewOp) -> None:
    mart = definitions.get(operation.name)
    _execute(operations, sql.SQL("DROP MATERIALIZED VIEW IF EXISTS {}").format(
        _mart_ident(mart.name)))
    _execute(operations, sql.SQL("DELETE FROM bioloupe_views.mart WHERE name = {}").format(
        sql.Literal(mart.name)))


@Operations.register_operation("replace_materialized_view")
class ReplaceMaterializedViewOp(MigrateOperation):
    """Replace a mart with another version of its SQL: every view and materialized view
    above it is dropped and rebuilt, populated, with its indexes, grants and comments
    (bioloupe_views/replace.py). `side_by_side=True` builds the new version and the rebuilt
    dependents before taking any lock, so readers wait only for the swap; put it last in the
    migration, or inside `op.get_context().autocommit_block()` (see replace.py). Returns a
    replace.Replacement with the timings."""

    def __init__(self, name: str, version: int, side_by_side: bool = False,
                 lock_timeout: str | None = "2s", lock_retries: int = 10):
        self.name, self.version, self.side_by_side = name, version, side_by_side
        self.lock_timeout, self.lock_retries = lock_timeout, lock_retries

    @classmethod
    def replace_materialized_view(cls, operations: Operations, name: str, version: int,
                                  side_by_side: bool = False, lock_timeout: str | None = "2s",
                                  lock_retries: int = 10):
        return operations.invoke(cls(name, version, side_by_side, lock_timeout, lock_retries))


@Operations.implementation_for(ReplaceMaterializedViewOp)
def _replace_materialized_view(operations: Operations, operation: ReplaceMaterializedViewOp):
    try:
        return replace.replace(
            operations.get_bind().connection.dbapi_connection, operation.name, operation.version,
            side_by_side=operation.side_by_side, lock_timeout=operation.lock_timeout,
            lock_retries=operation.lock_retries)
    except UserError as exc:
        raise CommandError(str(exc)) from None
