"""Alembic environment: connect through the project's one DSN resolution, run the
migrations in a single transaction (PostgreSQL's DDL is transactional, so a failure leaves
nothing half-created), then store the current data checks in the database."""

import psycopg2
from alembic import context
from alembic.util import CommandError
from sqlalchemy import create_engine, pool

import bioloupe_views.ops  # noqa: F401  (registers op.create_materialized_view & co.)
from bioloupe_views import checks, db
from bioloupe_views.config import resolve_dsn
from bioloupe_views.errors import UserError


def _connect_engine():
    try:
        dsn = resolve_dsn(context.get_x_argument(as_dictionary=True).get("dsn"))
        db.connect(dsn).close()  # fail fast with the friendly message
    except UserError as exc:
        raise CommandError(str(exc)) from None
    return create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(
        dsn, application_name="bioloupe-views alembic"), poolclass=pool.NullPool)


def run_migrations_online() -> None:
    with _connect_engine().connect() as connection:
        context.configure(connection=connection, transactional_ddl=True,
                          version_table="bioloupe_views_alembic_version",
                          version_table_schema="public")
        with context.begin_transaction():
            context.run_migrations()
            raw = connection.connection.dbapi_connection
            with raw.cursor() as cur:
                cur.execute("SELECT to_regclass('bioloupe_views.check_definition') IS NOT NULL")
                has_checks = cur.fetchone()[0]
            if has_checks:
                try:
                    checks.sync(raw)
                except UserError as exc:
                    raise CommandError(str(exc)) from None


if context.is_offline_mode():
    raise CommandError("offline (--sql) mode is not supported: run against a database")
run_migrations_online()
