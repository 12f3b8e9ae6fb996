"""Trust, as the roles around a production database would test it: nothing another role
planted or wrote runs with the migration's rights, a writer cannot switch off the change
log, tracking has a start, no run hangs on its own snapshot, and a migration never fights a
refresh. Each test drives the real commands on a throwaway server."""

from __future__ import annotations

import hashlib
import shutil
import time

import psycopg2
import pytest

from bioloupe_views import migrate
from tests.test_changing_marts import project  # noqa: F401  (fixture: a temporary project)
from tests.test_roles import as_role, connect_as, new_role

LEAF = "mv_drug_trials"


def refresh_views(cli, *args, dsn, timeout=300):
    return cli(*args, dsn=dsn, executable="refresh-views", timeout=timeout)


def _last_statuses(sql) -> dict[str, str]:
    return dict(sql("SELECT mart, status FROM bioloupe_views.run_log WHERE run_id ="
                    " (SELECT run_id FROM bioloupe_views.run ORDER BY started_at DESC LIMIT 1)"))


def _dbname(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1]


def _new_version_migration(project, mart: str) -> None:
    """v2 of `mart` (v1's SQL as it is) and the migration that replaces v1 with it."""
    shutil.copytree(project / "sql" / mart / "v1", project / "sql" / mart / "v2")
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(Config(str(project / "alembic.ini"))).get_current_head()
    (project / "migrations" / "versions" / "t_trust_v2.py").write_text(
        '"""test: a new version"""\nfrom alembic import op\n\n'
        f"revision = 't_trust_v2'\ndown_revision = {head!r}\nbranch_labels = None\n"
        "depends_on = None\n\n\n"
        f"def upgrade():\n    op.replace_materialized_view({mart!r}, version=2)\n\n\n"
        f"def downgrade():\n    op.replace_materialized_view({mart!r}, version=1)\n")


# -- users' objects above a mart are rebuilt with their owner's rights --------------------

def test_a_users_materialized_view_above_a_replaced_mart_runs_with_its_owners_rights(
        project, dsn, sql):
    app = "bv_trust_app"
    sql(f"DO $$ BEGIN CREATE ROLE {app} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    sql(f"GRANT SELECT ON public.{LEAF} TO {app}")
    sql(f"CREATE SCHEMA appschema AUTHORIZATION {app}")
    sql("CREATE TABLE appschema.ran_as (who text)")
    sql(f"ALTER TABLE appschema.ran_as OWNER TO {app}")
    sql("CREATE FUNCTION appschema.evil() RETURNS text LANGUAGE plpgsql VOLATILE AS $$"
        " BEGIN INSERT INTO appschema.ran_as VALUES (current_user); RETURN current_user; END $$")
    sql(f"ALTER FUNCTION appschema.evil() OWNER TO {app}")
    sql(f"SET ROLE {app}; CREATE MATERIALIZED VIEW appschema.app_mv AS"
        f" SELECT d.drug_id, appschema.evil() AS who FROM public.{LEAF} d LIMIT 1; RESET ROLE")
    sql("TRUNCATE appschema.ran_as")
    _new_version_migration(project, LEAF)
    migrate.upgrade(dsn)
    # The owner's query ran, as the owner, and never as the migration's superuser.
    assert {r[0] for r in sql("SELECT who FROM appschema.ran_as")} == {app}
    assert sql("SELECT relowner::regrole::text, relispopulated FROM pg_class"
               " WHERE oid = 'appschema.app_mv'::regclass") == [(app, True)]
    assert sql("SELECT who FROM appschema.app_mv") == [(app,)]


def test_a_migration_that_may_not_act_as_a_views_owner_stops_naming_it(
        project, sources_dsn, sql, server):
    """A non-superuser owner of the project migrates; a view of another role above a mart
    cannot be rebuilt as that role, so the replacement stops, naming it, changing nothing."""
    dbname = _dbname(sources_dsn)
    run = _sql_on(sources_dsn)
    owner, other = new_role(run, "bv_trust_migrator"), new_role(run, "bv_trust_view_owner")
    run(f'GRANT CREATE ON DATABASE "{dbname}" TO {owner}')
    run(f"GRANT CREATE ON SCHEMA public TO {owner}")
    run(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {owner}")
    migrate.upgrade(as_role(server, dbname, owner))
    run(f"GRANT SELECT ON public.{LEAF} TO {other}")
    run(f"GRANT CREATE ON SCHEMA public TO {other}")
    other_conn = connect_as(server, dbname, other)
    other_conn.cursor().execute(f"CREATE VIEW public.other_v AS SELECT drug_id FROM public.{LEAF}")
    other_conn.close()
    _new_version_migration(project, LEAF)
    with pytest.raises(Exception) as info:
        migrate.upgrade(as_role(server, dbname, owner))
    message = str(info.value)
    assert "public.other_v" in message and other in message, message
    assert run(f"SELECT version FROM bioloupe_views.mart WHERE name = '{LEAF}'") == [(1,)]
    assert run("SELECT relowner::regrole::text FROM pg_class WHERE oid = 'public.other_v'::regclass") == [(other,)]


def _sql_on(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True

    def run(statement, params=None):
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    return run


# -- a writer cannot switch off the change log --------------------------------------------

def _memo_setting(table: str = "public.drugs") -> str:
    return f"bioloupe_views.changed_{hashlib.md5(table.encode()).hexdigest()[:16]}"


@pytest.fixture
def tracked(dsn, cli):
    assert cli("track-sources", "--apply", dsn=dsn).returncode == 0
    assert refresh_views(cli, dsn=dsn).returncode == 0
    assert refresh_views(cli, "--changed-only", dsn=dsn).returncode == 0
    return dsn


def _renamed_in_pipeline(sql) -> int:
    return sql("SELECT count(*) FROM public.mv_drug_pipeline WHERE drug_name LIKE '%(renamed)'")[0][0]


@pytest.mark.parametrize("how", ["set", "role default", "database default", "leftover"])
def test_a_memo_from_elsewhere_does_not_silence_the_change_log(tracked, cli, sql, server, how):
    setting = _memo_setting()
    dbname = _dbname(tracked)
    writer = new_role(sql, "bv_trust_writer")
    sql(f"GRANT SELECT, UPDATE ON public.drugs TO {writer}")
    if how == "role default":
        sql(f"ALTER ROLE {writer} SET {setting} = 'y'")
    elif how == "database default":
        sql(f"ALTER DATABASE {dbname} SET {setting} = 'y'")
    conn = connect_as(server, dbname, writer)
    try:
        with conn.cursor() as cur:
            if how == "set":
                cur.execute(f"SET {setting} = 'y'")
            if how == "leftover":
                # A pooled session: an earlier client's transaction wrote, and its memo was
                # kept for the session; that write is refreshed before the next client comes.
                cur.execute("BEGIN")
                cur.execute("UPDATE public.drugs SET name = name WHERE id = 1")
                cur.execute("SELECT pg_catalog.current_setting(%s)", (setting,))
                memo = cur.fetchone()[0]
                cur.execute("COMMIT")
                cur.execute(f"SET {setting} = %s", (memo,))
                assert refresh_views(cli, "--changed-only", dsn=tracked).returncode == 0
            cur.execute("UPDATE public.drugs SET name = name || ' (renamed)' WHERE id <= 20")
    finally:
        conn.close()
        sql(f"ALTER ROLE {writer} RESET ALL")
        sql(f"ALTER DATABASE {dbname} RESET {setting}")
    result = refresh_views(cli, "--changed-only", dsn=tracked)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _last_statuses(sql)["mv_drug_pipeline"] == "success", result.stdout
    assert _renamed_in_pipeline(sql) > 0


# -- tracking has a start ------------------------------------------------------------------

def test_writes_made_while_a_source_was_not_tracked_are_picked_up(tracked, cli, sql):
    assert cli("track-sources", "--remove", "--apply", dsn=tracked).returncode == 0
    sql("UPDATE public.drugs SET name = name || ' (renamed)' WHERE id <= 20")
    assert cli("track-sources", "--apply", dsn=tracked).returncode == 0
    result = refresh_views(cli, "--changed-only", dsn=tracked)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _last_statuses(sql)["mv_drug_pipeline"] == "success", result.stdout
    ((reason,),) = sql("SELECT reason FROM bioloupe_views.run_log WHERE mart = 'mv_drug_pipeline'"
                       " ORDER BY id DESC LIMIT 1")
    assert reason.startswith("tracking of source ") and "public.drugs" in reason, reason
    assert reason.endswith(" started after its last refresh"), reason
    assert _renamed_in_pipeline(sql) > 0
    # Refreshed once after the start: the next run has nothing to do.
    assert refresh_views(cli, "--changed-only", dsn=tracked).returncode == 0
    assert set(_last_statuses(sql).values()) == {"unchanged"}


def test_a_trigger_switched_off_and_on_again_counts_as_a_new_start(tracked, cli, sql):
    sql("ALTER TABLE public.drugs DISABLE TRIGGER bioloupe_views_source_change")
    sql("UPDATE public.drugs SET name = name || ' (renamed)' WHERE id <= 20")
    sql("ALTER TABLE public.drugs ENABLE ALWAYS TRIGGER bioloupe_views_source_change")
    result = refresh_views(cli, "--changed-only", dsn=tracked)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _last_statuses(sql)["mv_drug_pipeline"] == "success", result.stdout
    assert _renamed_in_pipeline(sql) > 0


def test_first_tracking_after_the_marts_were_built_refreshes_once(dsn, cli, sql):
    assert refresh_views(cli, dsn=dsn).returncode == 0
    sql("UPDATE public.drugs SET name = name || ' (renamed)' WHERE id <= 20")
    assert cli("track-sources", "--apply", dsn=dsn).returncode == 0
    assert refresh_views(cli, "--changed-only", dsn=dsn).returncode == 0
    assert _renamed_in_pipeline(sql) > 0


def test_status_and_doctor_say_since_when_each_source_is_tracked(tracked, cli, sql):
    since = dict(sql("SELECT c.relname, to_char(t.since, 'YYYY-MM-DD HH24:MI:SS')"
                     " FROM bioloupe_views.source_tracking t JOIN pg_class c ON c.oid = t.relid"))
    assert "drugs" in since
    doctor = cli("doctor", dsn=tracked)
    assert f"tracked public.drugs since {since['drugs']}" in doctor.stdout, doctor.stdout
    status = cli("status", dsn=tracked)
    assert status.returncode == 0, status.stderr
    assert "Source tracking: 17 of 17 sources tracked" in status.stdout, status.stdout


# -- no run waits on a snapshot that cannot move -------------------------------------------

@pytest.mark.parametrize("level", ["repeatable read", "serializable"])
def test_runs_end_and_succeed_whatever_the_default_isolation(dsn, cli, sql, level):
    sql(f"ALTER DATABASE {_dbname(dsn)} SET default_transaction_isolation = '{level}'")
    try:
        for _ in range(3):
            started = time.monotonic()
            result = refresh_views(cli, "--threads", "4", dsn=dsn, timeout=120)
            assert result.returncode == 0, result.stdout + result.stderr
            assert set(_last_statuses(sql).values()) == {"success"}, result.stdout
            assert time.monotonic() - started < 60
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        try:
            conn.cursor().execute("CALL bioloupe_views.refresh_all()")
        finally:
            conn.close()
        assert set(_last_statuses(sql).values()) == {"success"}
    finally:
        sql(f"ALTER DATABASE {_dbname(dsn)} RESET default_transaction_isolation")


def test_refresh_mart_refuses_a_snapshot_that_cannot_move(dsn, sql):
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT bioloupe_views.try_refresh_lock()")
            cur.execute("SELECT bioloupe_views.start_run('cli', ARRAY[%s])", (LEAF,))
            run = cur.fetchone()[0]
            conn.commit()
            cur.execute("SELECT mart, state FROM bioloupe_views.claim_next(%s)", (run,))
            conn.commit()
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            with pytest.raises(psycopg2.Error) as info:
                cur.execute("SELECT bioloupe_views.refresh_mart(%s, %s)", (run, LEAF))
            assert "needs a read committed transaction" in str(info.value)
    finally:
        conn.close()


# -- a migration never fights a refresh ----------------------------------------------------

def test_changing_the_project_schema_waits_for_a_refresh_then_says_so(dsn, sql):
    holder = psycopg2.connect(dsn)
    holder.autocommit = True
    try:
        holder.cursor().execute("SELECT bioloupe_views.try_refresh_lock()")
        started = time.monotonic()
        with pytest.raises(Exception) as info:
            migrate.downgrade(dsn, "0005")
        assert "cannot change the project schema while a refresh runs" in str(info.value)
        assert time.monotonic() - started < 60
    finally:
        holder.close()
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config(dsn)).get_current_head()
    assert sql("SELECT version_num FROM public.bioloupe_views_alembic_version") == [(head,)]


def test_another_sessions_temp_view_on_a_mart_is_named(project, dsn, sql, server):
    reader = new_role(sql, "bv_trust_connect_only")
    sql(f"GRANT SELECT ON public.{LEAF} TO {reader}")
    conn = connect_as(server, _dbname(dsn), reader)
    try:
        conn.cursor().execute(f"CREATE TEMP VIEW tv AS SELECT drug_id FROM public.{LEAF}")
        _new_version_migration(project, LEAF)
        with pytest.raises(Exception) as info:
            migrate.upgrade(dsn)
        message = str(info.value)
        assert "temporary view" in message and reader in message, message
        assert f"pid {conn.get_backend_pid()}" in message, message
        assert "Traceback" not in message and "\n" not in message.strip()
    finally:
        conn.close()
    migrate.upgrade(dsn)  # the session gone, the migration goes through
    assert sql(f"SELECT version FROM bioloupe_views.mart WHERE name = '{LEAF}'") == [(2,)]


# -- migration 0006, from the previous head on a populated database --------------------------

def test_0006_down_to_0005_and_up_again_keeps_history_and_tracking(tracked, cli, sql):
    def history():
        return sql("SELECT run_id::text, mart, status FROM bioloupe_views.run_log ORDER BY id")

    before = history()
    migrate.downgrade(tracked, "0005")
    assert sql("SELECT version_num FROM public.bioloupe_views_alembic_version") == [("0005",)]
    assert history() == before
    assert sql("SELECT to_regclass('bioloupe_views.source_tracking')") == [(None,)]
    # 0005's engine works on the same data, and its memo is 'y' again.
    assert "'y'" in sql("SELECT prosrc FROM pg_proc WHERE proname = 'log_source_change'")[0][0]
    assert refresh_views(cli, "--changed-only", dsn=tracked).returncode == 0
    assert set(_last_statuses(sql).values()) == {"unchanged"}
    sql("UPDATE public.drugs SET name = name || ' (renamed)' WHERE id <= 20")
    migrate.upgrade(tracked)
    assert history()[:len(before)] == before
    # The first run after the upgrade records each source's start, and refreshes its
    # readers once: a write before the upgrade is never lost.
    result = refresh_views(cli, "--changed-only", dsn=tracked)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _renamed_in_pipeline(sql) > 0
    assert sql("SELECT count(*) FROM bioloupe_views.source_tracking") == [(17,)]
    assert refresh_views(cli, "--changed-only", dsn=tracked).returncode == 0
    assert set(_last_statuses(sql).values()) == {"unchanged"}


def test_0006_rebuilds_a_mart_an_earlier_release_bound_to_a_planted_aggregate(dsn, sql):
    """An install made before bindings were verified: a mart bound to a planted
    array_agg(text). Upgrading refuses while the aggregate is where names resolve, and once
    it is moved out of the way, rebuilds the mart bound to pg_catalog's."""
    planted = "CREATE AGGREGATE public.array_agg(text) (SFUNC = pg_catalog.array_append, STYPE = text[])"
    migrate.downgrade(dsn, "0005")
    mart = "mv_drug_pipeline"   # no mart reads it
    definition = sql(f"SELECT pg_get_viewdef('public.{mart}'::regclass)")[0][0]
    assert "array_agg" in definition and "pg_catalog.array_agg" not in definition
    sql(planted)
    # What an earlier release did: bind under a search_path with public in it.
    sql(f"DROP MATERIALIZED VIEW public.{mart} CASCADE")
    sql(f"SET search_path = pg_catalog, public; "
        f"CREATE MATERIALIZED VIEW public.{mart} AS {definition}")
    bound = sql("SELECT count(*) FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid"
                f" WHERE r.ev_class = 'public.{mart}'::regclass"
                " AND d.refobjid = 'public.array_agg(text)'::regprocedure")[0][0]
    assert bound > 0
    with pytest.raises(Exception) as info:
        migrate.upgrade(dsn)
    assert "public.array_agg(text)" in str(info.value), info.value
    sql("CREATE SCHEMA quarantine")
    sql("ALTER AGGREGATE public.array_agg(text) SET SCHEMA quarantine")
    migrate.upgrade(dsn)
    assert sql("SELECT count(*) FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid"
               f" WHERE r.ev_class = 'public.{mart}'::regclass"
               " AND d.refobjid = 'quarantine.array_agg(text)'::regprocedure") == [(0,)]
    sql("DROP SCHEMA quarantine CASCADE")
