"""Issue 5: the pg_cron trigger. The in-database refresh (CALL bioloupe_views.refresh_all())
refreshes in the catalog's order with the same checks, rollback, lock and run log as
`refresh-views`; `bioloupe-views cron install|status|remove` manage its job; and pg_cron
fires it on its own.

pg_cron only runs jobs in the database named by cron.database_name, so the tests that need
pg_cron use a session-wide clone of the migrated template under that name."""

from __future__ import annotations

import json
import threading
import time

import psycopg2
import pytest
from psycopg2 import sql as pgsql

from bioloupe_views import checks, definitions
from bioloupe_views.dev.pgserver import ThrowawayServer, pg_cron_available, server_major
from tests.conftest import add_check

needs_pg_cron = pytest.mark.pg_cron  # skipped (conftest) where pg_cron is not installed
JOB = "bioloupe-views-refresh"
GATE = 515_051  # an advisory lock a test holds to pause a check mid-refresh


def _connect(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn


def _query(dsn, statement, params=None):
    conn = _connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def _order(sql):
    return [m for (m,) in sql("SELECT mart FROM bioloupe_views.refresh_order ORDER BY level, mart")]


def _dependents(sql, mart):
    """Every mart that reads `mart`, directly or through another mart (from the catalog)."""
    found, frontier = set(), {mart}
    while frontier:
        rows = sql("SELECT mart FROM bioloupe_views.mart_dependency WHERE depends_on = ANY(%s)",
                   (list(frontier),))
        frontier = {m for (m,) in rows} - found
        found |= frontier
    return found


def _runs(sql):
    return sql("SELECT run_id, trigger, status FROM bioloupe_views.run ORDER BY started_at")


def _log(sql, run_id):
    return sql("SELECT mart, status, mode, trigger, checks, started_at, ended_at"
               " FROM bioloupe_views.run_log WHERE run_id = %s ORDER BY id", (run_id,))


def _drug_names(sql, mart, drug_id):
    assert mart in definitions.marts()
    return {n for (n,) in sql(pgsql.SQL("SELECT DISTINCT drug_name FROM public.{} WHERE drug_id = %s")
                              .format(pgsql.Identifier(mart)), (drug_id,))}


def _call(dsn, statement="CALL bioloupe_views.refresh_all()", timeout="120s"):
    """Run the procedure the way pg_cron does (its own session, autocommit); returns the pid."""
    conn = _connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid(), set_config('statement_timeout', %s, false)",
                        (timeout,))
            pid = cur.fetchone()[0]
            cur.execute(statement)
        return pid
    finally:
        conn.close()


# --- the in-database refresh --------------------------------------------------------------

def test_refresh_all_refreshes_in_dependency_order_with_the_compiled_checks(dsn, sql):
    order = _order(sql)
    edges = sql("SELECT mart, depends_on FROM bioloupe_views.mart_dependency")
    assert edges, "no dependency between marts: the order test would prove nothing"
    drug_id = sql("SELECT min(drug_id) FROM public.mv_drug_pipeline")[0][0]
    sql("UPDATE drugs SET name = 'Renamed by the test' WHERE id = %s", (drug_id,))
    sql("REFRESH MATERIALIZED VIEW public.mv_drug_trials WITH NO DATA")

    _call(dsn)

    (run_id, trigger, status), = _runs(sql)
    assert (trigger, status) == ("pg_cron", "success")
    log = _log(sql, run_id)
    assert [row[0] for row in log] == order
    assert {(row[1], row[3]) for row in log} == {("success", "pg_cron")}
    modes = {row[0]: row[2] for row in log}
    assert modes.pop("mv_drug_trials") == "plain"  # unpopulated: the plain-refresh fallback
    assert set(modes.values()) == {"concurrent"}
    times = {row[0]: (row[5], row[6]) for row in log}
    for mart, upstream in edges:
        assert times[upstream][1] <= times[mart][0], f"{mart} refreshed before {upstream} ended"
    for mart, _, _, _, ran, _, _ in log:
        expected = {c.name for c in checks.compile_all() if c.mart == mart}
        assert {c["name"] for c in ran} == expected, mart
    assert _drug_names(sql, "mv_drug_pipeline", drug_id) == {"Renamed by the test"}
    assert sql("SELECT ispopulated FROM pg_matviews WHERE matviewname = 'mv_drug_trials'") == [(True,)]
    assert sql("SELECT bioloupe_views.try_refresh_lock(), bioloupe_views.release_refresh_lock()") \
        == [(True, True)], "the lock was not released"


def test_a_failing_check_rolls_back_its_mart_and_skips_its_dependents(dsn, sql):
    failing = "mv_development_programs"
    dependents = _dependents(sql, failing)
    assert dependents, f"{failing} has no dependents: nothing to skip"
    independent = [m for m in _order(sql) if m != failing and m not in dependents]
    # A business rule the test breaks: no drug may be called POISON.
    add_check(dsn, failing, "test_no_poison",
              "SELECT drug_id FROM public.mv_development_programs WHERE drug_name = 'POISON'")
    drug_id, old_name = sql(
        "SELECT dp.drug_id, dp.drug_name FROM public.mv_development_programs dp"
        " JOIN public.mv_efficacy_evidence e USING (drug_id) ORDER BY 1 LIMIT 1")[0]
    sql("UPDATE drugs SET name = 'POISON' WHERE id = %s", (drug_id,))

    _call(dsn)

    (run_id, trigger, status), = _runs(sql)
    assert (trigger, status) == ("pg_cron", "error")
    log = {row[0]: row for row in _log(sql, run_id)}
    assert log[failing][1] == "check_failed"
    poison = [c for c in log[failing][4] if c["name"] == "test_no_poison"]
    assert poison and poison[0]["status"] == "fail" and poison[0]["blocks"] is True
    assert {m: log[m][1] for m in dependents} == {m: "skipped" for m in dependents}
    assert {m: log[m][1] for m in independent} == {m: "success" for m in independent}
    assert {row[3] for row in log.values()} == {"pg_cron"}
    # Readers keep the last good data in the failed mart and its dependents ...
    for mart in [failing, *dependents]:
        assert _drug_names(sql, mart, drug_id) == {old_name}, mart
    # ... while the independent marts did refresh.
    assert _drug_names(sql, "mv_efficacy_evidence", drug_id) == {"POISON"}


def test_refresh_all_skips_and_changes_nothing_while_another_session_holds_the_lock(dsn, sql):
    holder = _connect(dsn)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT bioloupe_views.try_refresh_lock()")
            assert cur.fetchone()[0]
        drug_id = sql("SELECT min(drug_id) FROM public.mv_drug_pipeline")[0][0]
        before = _drug_names(sql, "mv_drug_pipeline", drug_id)
        sql("UPDATE drugs SET name = 'Changed while locked' WHERE id = %s", (drug_id,))

        _call(dsn)

        (run_id, trigger, status), = _runs(sql)
        assert (trigger, status) == ("pg_cron", "skipped")
        assert sql("SELECT count(*) FROM bioloupe_views.run_log")[0][0] == 0
        assert _drug_names(sql, "mv_drug_pipeline", drug_id) == before
    finally:
        holder.close()
    _call(dsn)  # the lock died with its session: the next run does the work
    assert [r[2] for r in _runs(sql)] == ["skipped", "success"]
    assert _drug_names(sql, "mv_drug_pipeline", drug_id) == {"Changed while locked"}


def test_while_the_procedure_runs_the_cli_and_a_late_run_back_off(dsn, sql, cli):
    # Pause the procedure inside its first mart's checks until the test releases GATE.
    first = _order(sql)[0]
    add_check(dsn, first, "test_gate",
              f"SELECT g FROM (SELECT pg_advisory_xact_lock_shared({GATE})::text AS g) s"
              " WHERE g IS NULL", severity="warn")
    gate = _connect(dsn)
    with gate.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (GATE,))
    errors = []
    procedure = threading.Thread(target=lambda: _guard(errors, _call, dsn))
    procedure.start()
    try:
        deadline = time.monotonic() + 30
        while not sql("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = %s"
                      " AND NOT granted", (GATE,)):
            assert time.monotonic() < deadline and procedure.is_alive(), errors or "no pause"
            time.sleep(0.05)
        pid = sql("SELECT pid FROM bioloupe_views.run WHERE status = 'running'")[0][0]

        result = cli("--select", first, dsn=dsn, executable="refresh-views", timeout=60)
        assert result.returncode == 1, result.stderr
        message = result.stderr.strip()
        assert "\n" not in message
        assert "another refresh holds the lock" in message and f"pid {pid} (pg_cron)" in message

        _call(dsn, timeout="15s")  # a late pg_cron run, queued behind the first: harmless
        assert sql("SELECT status FROM bioloupe_views.run WHERE pid <> %s", (pid,)) == [("skipped",)]
    finally:
        gate.close()
        procedure.join(60)
    assert not errors and not procedure.is_alive()
    assert sql("SELECT trigger, status FROM bioloupe_views.run WHERE pid = %s", (pid,)) \
        == [("pg_cron", "success")]
    assert sql("SELECT count(*) FROM bioloupe_views.run WHERE trigger = 'cli'")[0][0] == 0


def _guard(errors, func, *args):
    try:
        func(*args)
    except Exception as exc:  # reported by the test thread
        errors.append(exc)


# --- the cron commands ----------------------------------------------------------------

@pytest.fixture(scope="session")
def cron_dsn(postgresql_migrated_proc):
    """The database pg_cron schedules in (cron.database_name), cloned from the migrated
    template. Once per session: dropping it ends pg_cron's launcher for the server's life."""
    if not pg_cron_available():
        pytest.skip("pg_cron is not installed for this PostgreSQL (apt-get install postgresql-15-cron)")
    proc = postgresql_migrated_proc
    server_dsn = f"postgresql://{proc.user}@{proc.host}:{proc.port}/"
    admin = _connect(server_dsn + "postgres")
    with admin.cursor() as cur:
        cur.execute("SELECT current_setting('cron.database_name')")
        name = cur.fetchone()[0]
        template = postgresql_migrated_proc.template_dbname
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (template,))
        cur.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))
        cur.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            pgsql.Identifier(name), pgsql.Identifier(template)))
    yield server_dsn + name
    with admin.cursor() as cur:
        cur.execute(pgsql.SQL("DROP DATABASE {} WITH (FORCE)").format(pgsql.Identifier(name)))
    admin.close()


def _job(dsn):
    return _query(dsn, "SELECT jobid, schedule, command, active FROM cron.job WHERE jobname = %s",
                  (JOB,))


@needs_pg_cron
def test_install_status_and_remove(cron_dsn, cli):
    try:
        first = cli("cron", "install", "--schedule", "*/15 * * * *", dsn=cron_dsn)
        assert first.returncode == 0, first.stderr
        (jobid, schedule, command, active), = _job(cron_dsn)
        assert (schedule, command, active) == ("*/15 * * * *", "CALL bioloupe_views.refresh_all()", True)

        again = cli("cron", "install", "--schedule", "*/15 * * * *", dsn=cron_dsn)
        assert again.returncode == 0 and "Unchanged" in again.stdout, again.stderr
        assert _job(cron_dsn) == [(jobid, schedule, command, active)]

        # A selection is validated against the database and stored as a text[] literal.
        chosen = "mv_development_programs"
        expected = {chosen} | _dependents(lambda *q: _query(cron_dsn, *q), chosen)
        updated = cli("cron", "install", "--schedule", "@monthly", "--select", f"{chosen}+",
                      dsn=cron_dsn)
        assert updated.returncode == 0 and "Updated" in updated.stdout, updated.stderr
        (same_id, schedule, command, _), = _job(cron_dsn)
        assert (same_id, schedule) == (jobid, "@monthly")
        assert command.startswith("CALL bioloupe_views.refresh_all(ARRAY[") and ";" not in command
        pid = _call(cron_dsn, command)  # the job's own statement refreshes exactly the selection
        (run_id, status), = _query(cron_dsn, "SELECT run_id, status FROM bioloupe_views.run"
                                             " WHERE pid = %s", (pid,))
        assert status == "success"
        assert {m for (m,) in _query(cron_dsn, "SELECT mart FROM bioloupe_views.run_log WHERE"
                                     " run_id = %s AND status = 'success'", (run_id,))} == expected

        unknown = cli("cron", "install", "--schedule", "* * * * *", "--select", "mv_nope'); --",
                      dsn=cron_dsn)
        assert unknown.returncode == 2 and "valid names are" in unknown.stderr
        assert _job(cron_dsn)[0][1:3] == (schedule, command)

        status = cli("cron", "status", dsn=cron_dsn)
        assert status.returncode == 0, status.stderr
        assert JOB in status.stdout and "@monthly" in status.stdout and "active" in status.stdout
        data = json.loads(cli("cron", "status", "--json", dsn=cron_dsn).stdout)
        assert data["job"]["jobid"] == jobid and data["job"]["active"] is True
        assert data["job"]["command"] == command
    finally:
        removed = cli("cron", "remove", dsn=cron_dsn)
    assert removed.returncode == 0 and "Removed" in removed.stdout, removed.stderr
    assert _job(cron_dsn) == []
    twice = cli("cron", "remove", dsn=cron_dsn)
    assert twice.returncode == 0 and "nothing to remove" in twice.stdout
    assert "No pg_cron job" in cli("cron", "status", dsn=cron_dsn).stdout


@needs_pg_cron
@pytest.mark.parametrize("schedule", ["61 * * * *", "* * * * * *", "30 seconds", "@every 5m",
                                      "1/5 * * * *", "* * * 13 *", ""])
def test_an_invalid_schedule_is_one_line_and_exit_2(cron_dsn, cli, schedule):
    result = cli("cron", "install", "--schedule", schedule, dsn=cron_dsn)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: invalid schedule") and result.stderr.count("\n") == 1


@needs_pg_cron
def test_a_non_superuser_with_usage_on_cron_installs_and_removes_its_job(cron_dsn, cli):
    # Such a role may not read shared_preload_libraries or cron.*: the checks must not trip.
    role, password = "bioloupe_cron_user", "s3cret-cron"
    _query(cron_dsn, pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(pgsql.Identifier(role)),
           (password,))
    try:
        _query(cron_dsn, pgsql.SQL("GRANT USAGE ON SCHEMA cron, bioloupe_views TO {0};"
                                   " GRANT SELECT ON ALL TABLES IN SCHEMA bioloupe_views TO {0}")
               .format(pgsql.Identifier(role)))
        user_dsn = cron_dsn.replace("postgres@", f"{role}:{password}@", 1)
        installed = cli("cron", "install", "--schedule", "0 0 1 1 *", dsn=user_dsn)
        assert installed.returncode == 0, installed.stderr
        assert f"as {role}" in installed.stdout
        assert _query(cron_dsn, "SELECT username, schedule FROM cron.job WHERE jobname = %s",
                      (JOB,)) == [(role, "0 0 1 1 *")]
        status = cli("cron", "status", dsn=user_dsn)
        assert status.returncode == 0 and "0 0 1 1 *" in status.stdout, status.stderr
        removed = cli("cron", "remove", dsn=user_dsn)
        assert removed.returncode == 0 and "Removed" in removed.stdout, removed.stderr
        assert _query(cron_dsn, "SELECT count(*) FROM cron.job WHERE jobname = %s", (JOB,)) == [(0,)]
    finally:
        _query(cron_dsn, pgsql.SQL("DELETE FROM cron.job WHERE username = %s; DROP OWNED BY {0};"
                                   " DROP ROLE {0}").format(pgsql.Identifier(role)), (role,))


@needs_pg_cron
def test_install_outside_cron_database_name_says_how_to_fix_it(dsn, cli):
    result = cli("cron", "install", "--schedule", "* * * * *", dsn=dsn)
    dbname = dsn.rsplit("/", 1)[1]
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "cron.database_name" in result.stderr
    assert f"cron.database_name = '{dbname}'" in result.stderr
    assert "CREATE EXTENSION pg_cron" in result.stderr


def test_without_pg_cron_loaded_the_error_says_how_to_enable_it(cli):
    with ThrowawayServer(cron=False) as plain:
        for command in (["install", "--schedule", "* * * * *"], ["status"]):
            result = cli("cron", *command, dsn=plain.dsn("postgres"))
            message = result.stderr
            assert result.returncode == 2 and message.count("\n") == 1, message
            assert "shared_preload_libraries = 'pg_cron'" in message
            assert "cron.database_name = 'postgres'" in message
            assert "CREATE EXTENSION pg_cron; in database postgres" in message
            if not pg_cron_available(plain.bindir):
                assert f"apt-get install postgresql-{server_major(plain.bindir)}-cron" in message


@needs_pg_cron
def test_pg_cron_fires_the_job_on_its_own(cron_dsn, cli):
    drug_id = _query(cron_dsn, "SELECT min(drug_id) FROM public.mv_drug_pipeline")[0][0]
    _query(cron_dsn, "UPDATE drugs SET name = 'Renamed for pg_cron' WHERE id = %s", (drug_id,))
    since = _query(cron_dsn, "SELECT now()")[0][0]
    try:
        installed = cli("cron", "install", "--schedule", "* * * * *", dsn=cron_dsn)
        assert installed.returncode == 0, installed.stderr
        jobid = _job(cron_dsn)[0][0]
        deadline, runs = time.monotonic() + 75, []
        while time.monotonic() < deadline:
            runs = _query(cron_dsn, "SELECT status, return_message, job_pid FROM cron.job_run_details"
                                    " WHERE jobid = %s AND status NOT IN ('starting', 'running')", (jobid,))
            if runs:
                break
            time.sleep(1)
        assert runs, "pg_cron did not run the job within 75 s"
        (status, message, pid), = runs[:1]
        assert status == "succeeded", message
        (run_id, trigger, run_status), = _query(
            cron_dsn, "SELECT run_id, trigger, status FROM bioloupe_views.run"
                      " WHERE pid = %s AND started_at >= %s", (pid, since))
        assert (trigger, run_status) == ("pg_cron", "success")
        # Every mart, refreshed by the one worker in its queue's order (start_run's).
        marts = _query(cron_dsn, "SELECT mart FROM bioloupe_views.refresh_order ORDER BY mart")
        queued = _query(cron_dsn, "SELECT mart FROM bioloupe_views.run_log WHERE run_id = %s"
                                  " ORDER BY position", (run_id,))
        assert sorted(queued) == marts
        assert _query(cron_dsn, "SELECT mart, status FROM bioloupe_views.run_log WHERE run_id = %s"
                                " ORDER BY ended_at", (run_id,)) == [(m, "success") for (m,) in queued]
        assert _query(cron_dsn, "SELECT DISTINCT drug_name FROM public.mv_drug_pipeline WHERE"
                                " drug_id = %s", (drug_id,)) == [("Renamed for pg_cron",)]
        shown = json.loads(cli("cron", "status", "--json", dsn=cron_dsn).stdout)["runs"]
        assert any(r["run_id"] == str(run_id) and r["refresh_status"] == "success"
                   and r["status"] == "succeeded" for r in shown)
    finally:
        cli("cron", "remove", dsn=cron_dsn)


@needs_pg_cron
def test_downgrade_to_base_removes_the_job_it_installed(cron_dsn, cli):
    """No job is left calling a procedure that no longer exists. Put back afterwards."""
    try:
        assert cli("cron", "install", "--schedule", "@monthly", dsn=cron_dsn).returncode == 0
        assert _job(cron_dsn)
        down = cli("-x", f"dsn={cron_dsn}", "downgrade", "base", executable="alembic")
        assert down.returncode == 0, down.stdout + down.stderr
        assert _job(cron_dsn) == []
        assert _query(cron_dsn, "SELECT to_regnamespace('bioloupe_views')") == [(None,)]
    finally:
        up = cli("-x", f"dsn={cron_dsn}", "upgrade", "head", executable="alembic")
        assert up.returncode == 0, up.stdout + up.stderr


@needs_pg_cron
def test_install_changed_only_schedules_the_changed_only_call(cron_dsn, cli):
    try:
        installed = cli("cron", "install", "--schedule", "@daily", "--changed-only", dsn=cron_dsn)
        assert installed.returncode == 0, installed.stderr
        (_, _, command, _), = _job(cron_dsn)
        assert command == "CALL bioloupe_views.refresh_all(p_changed_only => true)"
        _call(cron_dsn, "CALL bioloupe_views.refresh_all()")   # a baseline for every mart
        pid = _call(cron_dsn, command)
        (run_id, status, options), = _query(
            cron_dsn, "SELECT run_id, status, options FROM bioloupe_views.run WHERE pid = %s"
                      " ORDER BY started_at DESC LIMIT 1", (pid,))
        assert status == "success" and options["changed_only"] is True
        # No source is tracked here, so every mart is refreshed, saying why.
        reasons = _query(cron_dsn, "SELECT status, reason FROM bioloupe_views.run_log"
                                   " WHERE run_id = %s", (run_id,))
        assert len(reasons) == 5
        assert all(s == "success" and r.startswith("untracked source public.") for s, r in reasons)
    finally:
        assert cli("cron", "remove", dsn=cron_dsn).returncode == 0
