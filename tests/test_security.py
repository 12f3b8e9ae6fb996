"""No role can make another run its SQL. Each attack is tried for real on a throwaway server:
the refresher role cannot change what checks run; an operator planted in `public` is never
called by a refresh (while the 0001 engine, the control, calls it); a role that can only
connect cannot take the refresh lock or touch runs through the engine; a downgrade stops at
an object it did not create and removes the pg_cron job it installed."""

from __future__ import annotations

import psycopg2
import pytest

from bioloupe_views import migrate
from tests.test_roles import admin, alembic, as_role, connect_as, new_role, roles_quoted  # noqa: F401

DOWNGRADE = ("downgrade", "base")


def _dbname(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1]


def _denied(conn, statement, params=None) -> str:
    with pytest.raises(psycopg2.errors.InsufficientPrivilege) as info:
        conn.cursor().execute(statement, params)
    return str(info.value).splitlines()[0]


def test_the_refresher_refreshes_but_cannot_change_what_any_check_runs(
        sources_dsn, admin, cli, server):
    refresher = new_role(admin, "refresher")
    result = alembic(cli, sources_dsn, f"refresher_role={refresher}")
    assert result.returncode == 0, result.stderr
    dsn = as_role(server, _dbname(sources_dsn), refresher)

    # It can do its job, through the same engine as everyone.
    for command in (("refresh",), ("check",), ("status",)):
        outcome = cli(*command, dsn=dsn)
        assert outcome.returncode == 0, (command, outcome.stdout, outcome.stderr)
    conn = connect_as(server, _dbname(sources_dsn), refresher)
    try:
        conn.cursor().execute("CALL bioloupe_views.refresh_all(ARRAY['mv_drug_trials'])")
        # ...and nothing more: the checks, their registry and the routines are the owner's.
        check = admin("SELECT relation FROM bioloupe_views.mart_check ORDER BY position LIMIT 1")[0][0]
        assert "permission denied for table mart_check" in _denied(
            conn, "UPDATE bioloupe_views.mart_check SET severity = 'warn'")
        assert "permission denied for schema bioloupe_views_checks" in _denied(
            conn, f"CREATE OR REPLACE VIEW bioloupe_views_checks.{check} AS"
                  " SELECT current_user AS who, pg_read_file('/etc/hostname') AS secret")
        assert "permission denied for schema bioloupe_views" in _denied(
            conn, "CREATE FUNCTION bioloupe_views.run_checks(p_mart text, x int) RETURNS int"
                  " LANGUAGE sql AS 'SELECT 1'")
        assert "must be owner of function bioloupe_views.refresh_mart" in _denied(
            conn, "ALTER FUNCTION bioloupe_views.refresh_mart(uuid, text) SECURITY DEFINER")
        assert "must be owner of materialized view mv_drug_trials" in _denied(
            conn, "ALTER MATERIALIZED VIEW public.mv_drug_trials RENAME TO x")
    finally:
        conn.close()
    # A lock holder the refresher may not see the details of (a superuser's session, no
    # running run): still one line naming it, never a traceback.
    holder = psycopg2.connect(sources_dsn)
    try:
        holder.cursor().execute("SELECT pg_advisory_lock(1651470447, 1)")
        busy = cli("refresh", dsn=dsn)
        assert busy.returncode == 1 and "Traceback" not in busy.stderr
        assert busy.stderr.count("\n") == 1
        assert f"another refresh holds the lock: pid {holder.get_backend_pid()}" in busy.stderr
    finally:
        holder.close()
    # The superuser's next runs execute the owner's checks, as they were migrated.
    admin("CALL bioloupe_views.refresh_all()")
    assert cli("diff", dsn=sources_dsn).returncode == 0


def test_an_operator_planted_in_public_is_never_called_by_a_refresh(sources_dsn, admin, cli, server):
    planter = new_role(admin, "planter")
    admin(f"GRANT CREATE ON SCHEMA public TO {roles_quoted(admin, planter)}")
    admin("CREATE TABLE public.hijacked (who text)")
    admin("GRANT INSERT ON public.hijacked TO PUBLIC")

    def plant(conn):
        conn.cursor().execute(
            "CREATE FUNCTION public.hostile_concat(bigint, text) RETURNS text LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO public.hijacked VALUES (current_user); RETURN $1::text || $2;"
            " END $$")
        conn.cursor().execute("CREATE OPERATOR public.|| (LEFTARG = bigint, RIGHTARG = text,"
                              " FUNCTION = public.hostile_concat)")

    def calls():
        return admin("SELECT count(*) FROM public.hijacked")[0][0]

    # The control: the 0001 engine runs stored check text as the caller, operators looked up
    # at run time, so the planted operator runs as the superuser.
    migrate.upgrade(sources_dsn, "0001")
    conn = connect_as(server, _dbname(sources_dsn), planter)
    try:
        plant(conn)
        admin("CALL bioloupe_views.refresh_all()")
        assert calls() > 0
        admin("DELETE FROM public.hijacked")
        conn.cursor().execute("DROP OPERATOR public.|| (bigint, text)")
        conn.cursor().execute("DROP FUNCTION public.hostile_concat(bigint, text)")

        # Head: checks are views bound when the migration created them.
        migrate.upgrade(sources_dsn)
        plant(conn)
    finally:
        conn.close()
    admin("CALL bioloupe_views.refresh_all()")
    assert cli("refresh", dsn=sources_dsn).returncode == 0
    assert cli("check", dsn=sources_dsn).returncode == 0
    assert calls() == 0


def test_a_role_that_can_connect_cannot_take_the_lock_or_touch_runs(dsn, cli, sql, server, admin):
    nobody = new_role(admin, "nobody")
    # Even with USAGE on the schema (as a too-generous GRANT might give), the routines are
    # not PUBLIC's.
    sql(f"GRANT USAGE ON SCHEMA bioloupe_views TO {roles_quoted(admin, nobody)}")
    conn = connect_as(server, _dbname(dsn), nobody)
    try:
        for statement in ("SELECT bioloupe_views.try_refresh_lock()",
                          "SELECT bioloupe_views.start_run('cli')",
                          "SELECT bioloupe_views.finish_run(gen_random_uuid())",
                          "CALL bioloupe_views.refresh_all()"):
            assert "permission denied for" in _denied(conn, statement), statement
        result = cli("refresh", dsn=as_role(server, _dbname(dsn), nobody))
        assert result.returncode == 2
        assert "permission denied for" in result.stderr and result.stderr.count("\n") == 1
        assert "alembic -x refresher_role=<this role> upgrade head" in result.stderr
        # PostgreSQL lets anyone take an advisory lock: the refresh names who holds it.
        conn.cursor().execute("SELECT pg_advisory_lock(1651470447, 1)")
        pid = conn.get_backend_pid()
        blocked = cli("refresh", dsn=dsn)
        assert blocked.returncode == 1
        assert f"another refresh holds the lock: pid {pid}" in blocked.stderr
    finally:
        conn.close()
    assert sql("SELECT count(*) FROM bioloupe_views.run WHERE status = 'running'") == [(0,)]


def test_downgrade_stops_at_objects_it_did_not_create(dsn, cli, sql):
    sql("CREATE VIEW public.failed_refreshes AS"
        " SELECT mart, count(*) AS n FROM bioloupe_views.run_log WHERE status <> 'success'"
        " GROUP BY mart")
    result = cli("-x", f"dsn={dsn}", *DOWNGRADE, executable="alembic")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    failed = [l for l in (result.stdout + result.stderr).splitlines() if l.startswith("FAILED:")]
    assert len(failed) == 1 and "view failed_refreshes depends on table" in failed[0], failed
    # Nothing changed: the user's view, the schema and the marts are all there.
    assert sql("SELECT count(*) FROM public.failed_refreshes") is not None
    assert sql("SELECT to_regclass('public.mv_drug_trials') IS NOT NULL") == [(True,)]
    assert cli("refresh", dsn=dsn).returncode == 0
    sql("DROP VIEW public.failed_refreshes")
    assert cli("-x", f"dsn={dsn}", *DOWNGRADE, executable="alembic").returncode == 0
    assert sql("SELECT to_regnamespace('bioloupe_views')") == [(None,)]
