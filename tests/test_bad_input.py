"""Issue 8: bad input. Each case gets one actionable line, exit 2 (alembic: `FAILED: ...`,
non-zero), no traceback, and never a password in the output, from every command it
concerns: refresh-views, bioloupe-views refresh/check/status/graph, and alembic upgrade head.
"""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from bioloupe_views.dev.pgserver import free_port

SECRET = "S3cret-Pw-9b1e"      # a password that must never be printed
OTHER_SECRET = "Wr0ng-Pw-4c2d"

CLI_COMMANDS = {
    "refresh-views": ("refresh-views", ()),
    "refresh": ("bioloupe-views", ("refresh",)),
    "check": ("bioloupe-views", ("check",)),
    "status": ("bioloupe-views", ("status",)),
    "graph": ("bioloupe-views", ("graph",)),
}
SELECTING = ("refresh-views", "refresh", "check")


def run(cli, command, dsn=None, extra=(), env=None):
    """One command as a user types it; the DSN goes in --dsn (alembic: -x dsn=...)."""
    if command == "alembic":
        args = (["-x", f"dsn={dsn}"] if dsn else []) + ["upgrade", "head"]
        return cli(*args, executable="alembic", env=env)
    executable, args = CLI_COMMANDS[command]
    args = [*args, *extra] + (["--dsn", dsn] if dsn else [])
    return cli(*args, executable=executable, env=env)


ARGV_WARNING = "Warning: a password in "   # a password in --dsn / -x dsn: the one extra line


def assert_one_line(result, command, *phrases, secrets=(SECRET,)):
    output = result.stdout + result.stderr
    result.stderr = "".join(l for l in result.stderr.splitlines(keepends=True)
                            if not l.startswith(ARGV_WARNING))
    where = f"{command}: {output!r}"
    assert "Traceback" not in output, where
    for secret in secrets:
        assert secret not in output, where
    output = result.stdout + result.stderr
    if command == "alembic":
        assert result.returncode != 0, where
        errors = [l for l in output.splitlines() if l.startswith("FAILED:")]
        assert len(errors) == 1, where
        assert not [l for l in output.splitlines()
                    if l.strip() and not l.startswith(("FAILED:", "INFO "))], where
        line = errors[0]
    else:
        assert result.returncode == 2, where
        assert result.stdout == "", where
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, where
        line = result.stderr
    for phrase in phrases:
        assert phrase in line, where


ALL = [*CLI_COMMANDS, "alembic"]


class Admin:
    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True

    def __call__(self, statement, params=None):
        with self.conn.cursor() as cur:
            cur.execute(statement, params)

    def create_login_role(self, prefix):
        role = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
        return role


@pytest.fixture
def admin(server):
    a = Admin(server.dsn())
    yield a
    a.conn.close()


@pytest.fixture
def empty_dsn(server, admin):
    """A database with nothing in it: no sources, no project schema."""
    name = f"empty_{uuid.uuid4().hex[:8]}"
    admin(f"CREATE DATABASE {name}")
    yield server.dsn(name)
    admin(f"DROP DATABASE {name} WITH (FORCE)")


def with_user(server, dbname, user, password):
    return f"postgresql://{user}:{password}@127.0.0.1:{server.port}/{dbname}"


# --- where the database is -----------------------------------------------------------------

@pytest.mark.parametrize("command", ALL)
def test_malformed_dsn(cli, command):
    result = run(cli, command, f"host=127.0.0.1 password={SECRET} dbname")
    assert_one_line(result, command, "malformed DSN", "postgresql://user:password@host:port/dbname")


@pytest.mark.parametrize("command", ALL)
def test_unreachable_host(cli, command):
    closed = free_port()
    result = run(cli, command, f"postgresql://app:{SECRET}@127.0.0.1:{closed}/bioloupe")
    assert_one_line(result, command, "cannot reach PostgreSQL at app@127.0.0.1", "host/port")
    unknown = run(cli, command, f"postgresql://app:{SECRET}@no-such-host.invalid:5432/bioloupe")
    assert_one_line(unknown, command, "unknown host", "BIOLOUPE_DB_HOST")


@pytest.mark.parametrize("command", ALL)
def test_wrong_password(cli, command, server, admin):
    role = admin.create_login_role("pw")
    result = run(cli, command, with_user(server, "postgres", role, OTHER_SECRET))
    assert_one_line(result, command, "password authentication failed", role,
                    secrets=(SECRET, OTHER_SECRET))


def test_wrong_password_from_the_environment_variables(cli, server, admin):
    role = admin.create_login_role("pw")
    env = {"BIOLOUPE_DB_HOST": "127.0.0.1", "BIOLOUPE_DB_PORT": str(server.port),
           "BIOLOUPE_DB_USER": role, "BIOLOUPE_DB_PASSWORD": OTHER_SECRET,
           "BIOLOUPE_DB_NAME": "postgres"}
    for command in ("refresh-views", "status", "alembic"):
        result = run(cli, command, env=env)
        assert_one_line(result, command, "password authentication failed", "BIOLOUPE_DB_PASSWORD",
                        secrets=(SECRET, OTHER_SECRET))


@pytest.mark.parametrize("command", ALL)
def test_unknown_database(cli, command, server, admin):
    role = admin.create_login_role("db")
    result = run(cli, command, with_user(server, "no_such_database", role, SECRET))
    assert_one_line(result, command, "no_such_database does not exist", "BIOLOUPE_DB_NAME")


@pytest.mark.parametrize("command", ALL)
def test_missing_environment_variables(cli, command):
    result = run(cli, command)   # run_cli drops every BIOLOUPE_* variable
    assert_one_line(result, command, "no database configured", "BIOLOUPE_DATABASE_URL", "--dsn")
    partial = run(cli, command, env={"BIOLOUPE_DB_HOST": "127.0.0.1",
                                     "BIOLOUPE_DB_PASSWORD": SECRET})
    assert_one_line(partial, command, "BIOLOUPE_DB_USER", "BIOLOUPE_DB_NAME")


# --- what is asked -------------------------------------------------------------------------

@pytest.mark.parametrize("command", SELECTING)
def test_unknown_view_in_select(cli, command, dsn, sql):
    result = run(cli, command, dsn, extra=("--select", "mv_nope+"))
    assert_one_line(result, command, "unknown view 'mv_nope'", "mv_development_programs",
                    "mv_drug_pipeline")
    assert sql("SELECT count(*) FROM bioloupe_views.run") == [(0,)]


def test_invalid_cron_schedule(cli, dsn):
    result = cli("cron", "install", "--schedule", "61 * * * *", "--dsn",
                 dsn.replace("postgres@", f"postgres:{SECRET}@"))
    assert_one_line(result, "cron install", "invalid schedule '61 * * * *'", "*/15 * * * *")


# --- what the database holds ---------------------------------------------------------------

@pytest.mark.parametrize("command", ALL)
def test_database_without_the_sources(cli, command, empty_dsn):
    result = run(cli, command, empty_dsn)
    if command == "alembic":
        assert_one_line(result, command, "source contract is not met", "missing tables: drugs",
                        "nothing was created")
    else:
        assert_one_line(result, command, "run `alembic upgrade head` first")


@pytest.mark.parametrize("command", list(CLI_COMMANDS))
def test_database_where_the_migrations_have_not_run(cli, command, sources_dsn):
    result = run(cli, command, sources_dsn)
    assert_one_line(result, command, "no bioloupe_views schema", "run `alembic upgrade head` first")


# --- who is asking -------------------------------------------------------------------------

def test_permission_denied(cli, dsn, sources_dsn, server, admin):
    """A role that may connect but has no privilege on our schema (or, for the migration, on
    the database and schema public): one line naming the grant that is missing."""
    role = admin.create_login_role("noperm")
    migrated = with_user(server, dsn.rsplit("/", 1)[1], role, SECRET)
    for command in CLI_COMMANDS:
        result = run(cli, command, migrated)
        # PUBLIC may look names up in the schema (the source triggers need it), so what is
        # denied is the first view or routine the command reads.
        assert_one_line(result, command, "permission denied for ",
                        "alembic -x refresher_role=<this role> upgrade head")
    result = run(cli, "alembic", with_user(server, sources_dsn.rsplit("/", 1)[1], role, SECRET))
    assert_one_line(result, "alembic", "permission denied for schema public",
                    "GRANT USAGE (and CREATE, for migrations) ON SCHEMA public")
