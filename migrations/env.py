"""Alembic environment: connect through the project's one DSN resolution and run the
migrations in a single transaction (PostgreSQL's DDL is transactional, so a failure leaves
nothing half-created). Each mart's checks are part of its version and installed by the
operation that creates or replaces it, never re-read from the working tree here. Before
an upgrade or downgrade runs, a registered mart dropped by hand is rebuilt from its installed
version, and lost check views reinstalled (missing_marts.restore), even at head.

A reader role (`-x reader_role=NAME` or BIOLOUPE_READER_ROLE) is validated before anything
runs, passed to the operations through the context options (ops.grant_reader), and granted
SELECT on every mart at the end of each run, so setting it on a database already at head
takes effect too. A refresher role (`-x refresher_role=NAME` or BIOLOUPE_REFRESHER_ROLE) is
validated the same way and given the refresher's rights at the end (roles.grant_refresher);
every run grants the recorded refresher roles their rights on the routines and check views
it created. The settings that change a mart's rows (refresh_settings.py: TimeZone) are
taken from a plain session on the server's defaults, used for this run and recorded for
every refresh. The source schema (`-x source_schema=NAME` or BIOLOUPE_SOURCE_SCHEMA, else
the one the installed marts read, else public; contract.py) is validated the same way and
fixed for the run: the contract is checked there, and marts and checks are bound to it.
A permission error becomes one line naming the missing grant.

Progress goes through the logging settings of alembic.ini (each revision, each mart built
with its rows and seconds), unless the program running the migrations configured logging
itself (a test runner, an application calling migrate.upgrade), which keeps its own.
Offline mode (`--sql`) is refused in one line: the migrations read the database they run
on (the source contract, the installed versions, the roles), so there is no SQL to print
ahead of time."""

import logging
import logging.config

import psycopg2
import psycopg2.errors
from alembic import context
from alembic.util import CommandError
from sqlalchemy import create_engine, pool

import bioloupe_views.ops  # noqa: F401  (registers op.create_materialized_view & co.)
from bioloupe_views import (binding, contract, db, missing_marts, refresh_settings, roles,
                            standby)
from bioloupe_views.config import resolve_dsn
from bioloupe_views.definitions import in_project
from bioloupe_views.errors import UserError


def _connect_engine(x_arguments, reader_role, refresher_role):
    try:
        dsn = resolve_dsn(x_arguments.get("dsn"))
        probe = db.connect(dsn)  # fail fast with the friendly message
        try:
            standby.require_primary(probe, dsn)
            with probe.cursor() as cur:
                source_schema = contract.resolve(cur, contract.configured(x_arguments))
            if reader_role:
                roles.validate(probe, reader_role)
            if refresher_role:
                roles.validate(probe, refresher_role, roles.REFRESHER_X_ARGUMENT,
                               roles.REFRESHER_ROLE_VAR)
        finally:
            probe.close()
        settings = refresh_settings.server_defaults(dsn)
    except UserError as exc:
        raise CommandError(str(exc)) from None
    engine = create_engine("postgresql+psycopg2://", creator=lambda: _pinned(psycopg2.connect(
        dsn, application_name="bioloupe-views alembic")), poolclass=pool.NullPool)
    return engine, settings, source_schema


def _pinned(conn):
    db.pin_session(conn)
    return conn


def _migrating() -> bool:
    """Whether this run moves to a revision (upgrade, downgrade, stamp), not `alembic current`."""
    try:
        context.get_revision_argument()
    except KeyError:
        return False
    return True


def run_migrations_online() -> None:
    x_arguments = context.get_x_argument(as_dictionary=True)
    reader_role = roles.configured(x_arguments)
    refresher_role = roles.configured_refresher(x_arguments)
    engine, settings, source_schema = _connect_engine(x_arguments, reader_role, refresher_role)
    with engine.connect() as connection:
        context.configure(connection=connection, transactional_ddl=True,
                          version_table="bioloupe_views_alembic_version",
                          version_table_schema="public",
                          **{roles.CONTEXT_OPTION: reader_role})
        with context.begin_transaction():
            raw = connection.connection.dbapi_connection
            with raw.cursor() as cur:
                refresh_settings.use(cur, settings)  # the marts built here, as refreshes will
                contract.use(cur, source_schema)
            if _migrating():  # marts dropped by hand, back before the migrations assume them
                missing_marts.restore(raw, reader_role)
            context.run_migrations()
            if reader_role:
                roles.grant_all(raw, reader_role)
            with raw.cursor() as cur:
                if refresher_role:
                    cur.execute(in_project(
                        "SELECT to_regclass('{project_text}.refresher_role') IS NOT NULL"))
                    if not cur.fetchone()[0]:
                        raise CommandError("a refresher role needs the bioloupe_views schema at "
                                           "revision 0002 or later: run `alembic upgrade head`")
                    roles.grant_refresher(cur, refresher_role)
                roles.regrant_refreshers(cur)  # check views and routines created by this run
                refresh_settings.record(cur, settings)
                bioloupe_views.ops.rebind_installed(raw)  # what an earlier release bound
                binding.require_clean(cur)  # whatever this run created or kept


def _permission_denied(exc: BaseException):
    """The psycopg2 permission error behind `exc` (raw or wrapped by SQLAlchemy), or None."""
    orig = getattr(exc, "orig", exc)
    return orig if isinstance(orig, psycopg2.errors.InsufficientPrivilege) else None


def _configure_logging() -> None:
    config_file = context.config.config_file_name
    if config_file and not logging.getLogger().handlers:
        logging.config.fileConfig(config_file, disable_existing_loggers=False)


_configure_logging()
if context.is_offline_mode():
    raise CommandError("offline SQL generation (--sql) is not supported: the migrations read the "
                       "database they run on (its source contract, installed versions and "
                       "roles); run `alembic upgrade head` against the database, or a copy of it "
                       "to review first, and `alembic current` / `alembic history` to see what "
                       "is pending")
try:
    run_migrations_online()
except UserError as exc:
    raise CommandError(str(exc)) from None
except Exception as exc:
    denied = _permission_denied(exc)
    if denied is None:
        raise
    raise CommandError(roles.explain(denied)) from None
