"""Issue 8: bad input. Each case gets one actionable line, exit 2 (alembic: `FAILED: ...`,
non-zero), no traceback, and never a password in the output, from every command it
concerns: refresh-views, bioloupe-views refresh/check/status/graph, and alembic upgrade head.
"""

from __future__ import annotations

import json
import uuid

import psycopg2
import psycopg2.errors
import pytest

from bioloupe_views.dev.pgserver import free_port

from tests.conftest import ROOT

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


PROGRESS = ("created ", "changed ", "replaced ", "rebuilt ", "restored ")


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
        # Besides the error: Alembic's progress and the project's (alembic.ini's logging).
        assert not [l for l in output.splitlines()
                    if l.strip() and not l.startswith(("FAILED:", "INFO ") + PROGRESS)], where
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
    assert_one_line(result, command, "unknown mart 'mv_nope'", "mv_development_programs",
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


# --- where the results go ------------------------------------------------------------------

@pytest.mark.parametrize("command", SELECTING)
def test_an_unwritable_json_path_is_refused_before_anything_runs(cli, command, dsn, sql):
    for path, reason in (("/nonexistent/d/x.json", "no such file or directory"),
                         ("/tmp", "is a directory")):
        result = run(cli, command, dsn, extra=("--json", path))
        assert_one_line(result, command, f"--json {path}: cannot write there", reason,
                        "- for stdout")
    assert sql("SELECT count(*) FROM bioloupe_views.run") == [(0,)]


@pytest.mark.parametrize("command", ["refresh-views", "check"])
def test_json_dash_is_stdout_and_the_report_goes_to_stderr(cli, command, dsn, tmp_path):
    executable, args = CLI_COMMANDS[command]
    result = cli(*args, "--select", "mv_drug_trials", "--json", "-", dsn=dsn,
                 executable=executable)
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)    # nothing but the JSON on stdout
    assert payload["success"] is True
    assert "mv_drug_trials" in result.stderr
    assert not (ROOT / "-").exists()


# --- a session that cannot write -----------------------------------------------------------

READ_ONLY_OPTIONS = "options=-cdefault_transaction_read_only%3Don"
WRITING = {
    "refresh-views": ("refresh-views", ()),
    "track-sources --apply": ("bioloupe-views", ("track-sources", "--apply")),
    "cron install": ("bioloupe-views", ("cron", "install", "--schedule", "@hourly")),
}


def _writing(cli, command, dsn, env=None):
    if command == "alembic":
        return cli("-x", f"dsn={dsn}", "upgrade", "head", executable="alembic", env=env)
    executable, args = WRITING[command]
    return cli(*args, "--dsn", dsn, executable=executable, env=env)


def test_a_read_only_session_is_refused_by_every_writing_command(cli, dsn, sources_dsn, sql,
                                                                  sources_sql, admin, server):
    """default_transaction_read_only = on, from the DSN's options, PGOPTIONS or a role's
    default: one line saying so and where it can come from, before anything is written."""
    for command in [*WRITING, "alembic"]:
        target = sources_dsn if command == "alembic" else dsn
        read_only = f"{target}?{READ_ONLY_OPTIONS}"
        result = _writing(cli, command, read_only)
        assert_one_line(result, command, "is read-only", "default_transaction_read_only = on",
                        "set by the DSN's options or PGOPTIONS", "the role's or database's default")
    pgoptions = _writing(cli, "refresh-views", dsn,
                         env={"PGOPTIONS": "-c default_transaction_read_only=on"})
    assert_one_line(pgoptions, "refresh-views", "is read-only", "DSN's options or PGOPTIONS")
    role = admin.create_login_role("ro")
    admin(f"ALTER ROLE {role} SUPERUSER")
    admin(f"ALTER ROLE {role} SET default_transaction_read_only = on")
    try:
        as_role = with_user(server, dsn.rsplit("/", 1)[1], role, SECRET)
        by_role = run(cli, "refresh-views", as_role)
        assert_one_line(by_role, "refresh-views", "is read-only", "the role's default",
                        "ALTER ROLE/DATABASE ... RESET default_transaction_read_only")
    finally:
        admin(f"DROP ROLE {role}")
    # Nothing was written: no run, no trigger, no job, no schema.
    assert sql("SELECT count(*) FROM bioloupe_views.run") == [(0,)]
    assert sql("SELECT count(*) FROM pg_trigger WHERE tgname = 'bioloupe_views_source_change'"
               ) == [(0,)]
    assert sources_sql("SELECT to_regnamespace('bioloupe_views')") == [(None,)]


# --- a role's own settings -----------------------------------------------------------------

def test_a_roles_statement_timeout_does_not_cut_the_tools_own_statements(cli, dsn, sql, admin,
                                                                         server):
    """A role whose default statement_timeout is shorter than the engine's bookkeeping
    (start_run, the run log) still refreshes: the tool pins statement_timeout = 0 for its
    sessions and bounds each refresh with --statement-timeout alone."""
    role = admin.create_login_role("slow")
    admin(f"ALTER ROLE {role} SUPERUSER")
    admin(f"ALTER ROLE {role} SET statement_timeout = '20ms'")
    as_role = with_user(server, dsn.rsplit("/", 1)[1], role, SECRET)
    try:
        # The role's default bites in a plain session of its own.
        conn = psycopg2.connect(as_role)
        try:
            with pytest.raises(psycopg2.errors.QueryCanceled):
                conn.cursor().execute("SELECT pg_sleep(0.2)")
        finally:
            conn.close()
        result = cli("--threads", "2", dsn=as_role, executable="refresh-views")
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "Traceback" not in output
        assert sql("SELECT status, count(*) FROM bioloupe_views.run_log GROUP BY 1") == [
            ("success", 5)]
        # --statement-timeout still bounds each refresh (its run's, not the role's).
        bounded = cli("--select", "mv_development_programs", "--statement-timeout", "1ms",
                      dsn=as_role, executable="refresh-views")
        output = bounded.stdout + bounded.stderr
        assert bounded.returncode == 1, output
        assert "Traceback" not in output
        assert "canceling statement due to statement timeout" in bounded.stdout
        run_id = sql("SELECT run_id FROM bioloupe_views.run ORDER BY started_at DESC LIMIT 1")
        assert sql("SELECT mart, status FROM bioloupe_views.run_log WHERE run_id = %s",
                   run_id[0]) == [("mv_development_programs", "error")]
    finally:
        admin(f"DROP ROLE {role}")


# --- durations PostgreSQL cannot take ------------------------------------------------------

@pytest.mark.parametrize("option,value,limit", [
    ("--statement-timeout", "99999999999999h", "2147483647ms (about 24.8 days)"),
    ("--statement-timeout", "2147483648", "2147483647ms (about 24.8 days)"),
    ("--lock-timeout", "25d", "2147483647ms (about 24.8 days)"),
    ("--log-retention", "99999999999999h", "36500d (100 years)"),
])
@pytest.mark.parametrize("command", ["refresh-views", "refresh"])
def test_a_duration_beyond_postgresqls_limit_is_refused_when_parsed(cli, command, option, value,
                                                                     limit, dsn, sql):
    result = run(cli, command, dsn, extra=(option, value))
    assert_one_line(result, command, f"{option} '{value}' is longer than", limit)
    assert sql("SELECT count(*) FROM bioloupe_views.run") == [(0,)]


def test_durations_at_the_limit_are_taken(cli, dsn, sql):
    result = cli("--select", "mv_drug_trials", "--statement-timeout", "2147483647ms",
                 "--lock-timeout", "24d", "--log-retention", "36500d", dsn=dsn,
                 executable="refresh-views")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sql("SELECT status FROM bioloupe_views.run_log") == [("success",)]


# --- a downgrade that would take someone's objects with it ---------------------------------

def test_downgrade_with_a_users_view_on_a_mart_names_it_and_changes_nothing(cli, dsn, sql):
    sql("CREATE VIEW public.user_v AS SELECT * FROM public.mv_drug_trials")
    head = sql("SELECT version_num FROM public.bioloupe_views_alembic_version")
    result = cli("-x", f"dsn={dsn}", "downgrade", "base", executable="alembic")
    assert_one_line(result, "alembic", "cannot drop materialized view public.mv_drug_trials",
                    "view public.user_v depends on materialized view public.mv_drug_trials",
                    "drop or move them first")
    # One transaction: the project schema, every mart and the revision are as they were.
    assert sql("SELECT version_num FROM public.bioloupe_views_alembic_version") == head
    assert sql("SELECT count(*) FROM pg_matviews WHERE schemaname = 'public'") == [(5,)]
    assert sql("SELECT count(*) FROM bioloupe_views.mart") == [(5,)]
    assert sql("SELECT count(*) FROM public.user_v")[0][0] > 0
    # Once the view is gone, the downgrade goes through.
    sql("DROP VIEW public.user_v")
    down = cli("-x", f"dsn={dsn}", "downgrade", "base", executable="alembic")
    assert down.returncode == 0, down.stdout + down.stderr
    assert sql("SELECT to_regnamespace('bioloupe_views')") == [(None,)]
