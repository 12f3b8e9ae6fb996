"""refresh-views --changed-only and CALL refresh_all(p_changed_only => true): a mart is
refreshed only when a relation its query or its checks read changed since its last
successful refresh, as the source change log (statement triggers added by
`bioloupe-views track-sources`) and the run log's recorded snapshots prove; never skipped
when a change committed before the run, even by a session that has not gone idle."""

from __future__ import annotations

import json
import threading
import time

import psycopg2
import pytest
from alembic.script import ScriptDirectory

from bioloupe_views import migrate
from tests.conftest import MARTS, assert_equal_to_seed

ALL = set(MARTS)
PIPELINE_ONLY = "drug_target_actions"          # read by mv_drug_pipeline alone
DISEASES = "diseases"                          # mv_development_programs (+ its dependents), mv_efficacy_evidence
DISEASE_READERS = {"mv_development_programs", "mv_competitive_landscape", "mv_drug_pipeline",
                   "mv_efficacy_evidence"}


def _statuses(sql, run_id=None) -> dict[str, str]:
    if run_id is None:
        run_id = sql("SELECT run_id FROM bioloupe_views.run ORDER BY started_at DESC LIMIT 1")[0][0]
    return dict(sql("SELECT mart, status FROM bioloupe_views.run_log WHERE run_id = %s", (run_id,)))


def _refreshed(sql) -> set[str]:
    return {m for m, s in _statuses(sql).items() if s == "success"}


def _touch(sql, table: str) -> None:
    """A real change: one row's copy of itself (every column kept), so the marts' rows stay."""
    sql(f"UPDATE public.{table} SET id = id WHERE id = (SELECT min(id) FROM public.{table})")


def refresh_views(cli, *args, dsn, env=None):
    return cli(*args, dsn=dsn, env=env, executable="refresh-views")


def _changed_only(cli, dsn, *args):
    result = refresh_views(cli, "--changed-only", *args, dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def tracked(dsn, cli, sql):
    result = cli("track-sources", "--apply", dsn=dsn)
    assert result.returncode == 0, result.stderr
    assert "Tracking 17 source tables" in result.stdout, result.stdout
    _full_refresh(cli, dsn)   # every mart's baseline
    return dsn


def _full_refresh(cli, dsn):
    assert refresh_views(cli, dsn=dsn).returncode == 0


def test_no_change_skips_every_mart_and_says_since_when(tracked, cli, sql, tmp_path):
    out = tmp_path / "run.json"
    started = time.monotonic()
    result = _changed_only(cli, tracked, "--json", str(out))
    elapsed = time.monotonic() - started
    assert _statuses(sql) == {m: "unchanged" for m in MARTS}
    last = dict(sql("SELECT mart, to_char(max(ended_at), 'YYYY-MM-DD HH24:MI:SS')"
                    " FROM bioloupe_views.run_log WHERE status = 'success' GROUP BY mart"))
    for mart in MARTS:
        line = next(l for l in result.stdout.splitlines() if f" UNCHANGED {mart} " in l)
        assert line.endswith(f"[unchanged since {last[mart]}]"), line
    assert "UNCHANGED=5 TOTAL=5" in result.stdout
    assert sql("SELECT status FROM bioloupe_views.run ORDER BY started_at DESC LIMIT 1") == [("success",)]
    results = json.loads(out.read_text())
    assert results["success"] and results["args"]["changed_only"] is True
    assert {r["mart"]: (r["status"], r["unchanged_since"]) for r in results["results"]} == {
        m: ("unchanged", last[m]) for m in MARTS}
    # The decision reads no mart and refreshes nothing: well under a second here.
    assert elapsed < 5, elapsed
    # `status`: an unchanged mart is as fresh as that run, not a failed refresh.
    status = cli("status", dsn=tracked)
    assert status.returncode == 0, status.stderr
    assert "not successful" not in status.stdout
    assert status.stdout.count("unchanged") == 5, status.stdout


def test_checks_wait_for_the_marts_they_read_so_nothing_is_refreshed_twice(tracked, cli, sql):
    """mv_efficacy_evidence's checks read mv_development_programs. With several workers both
    refresh side by side, but the checks wait for mv_development_programs' publish: they
    read its new rows, and the next --changed-only run has nothing to do."""
    _touch(sql, DISEASES)
    assert refresh_views(cli, "--threads", "4", dsn=tracked).returncode == 0
    ((side_by_side, checks_saw_it),) = sql(
        "SELECT e.started_at < p.ended_at,"
        "       pg_visible_in_snapshot(p.xid, e.check_snapshot)"
        " FROM bioloupe_views.run_log e JOIN bioloupe_views.run_log p USING (run_id)"
        " WHERE e.mart = 'mv_efficacy_evidence' AND p.mart = 'mv_development_programs'"
        "   AND e.run_id = (SELECT run_id FROM bioloupe_views.run ORDER BY started_at DESC LIMIT 1)")
    assert side_by_side and checks_saw_it
    _changed_only(cli, tracked)
    assert _statuses(sql) == {m: "unchanged" for m in MARTS}


def test_a_change_refreshes_only_its_readers_and_their_dependents(tracked, cli, sql):
    _touch(sql, PIPELINE_ONLY)
    result = _changed_only(cli, tracked)
    assert _refreshed(sql) == {"mv_drug_pipeline"}
    assert f"refreshed: source public.{PIPELINE_ONLY} changed" in result.stdout

    sql(f"DELETE FROM public.{DISEASES} d WHERE NOT EXISTS (SELECT 1 FROM public.indications i"
        " WHERE i.disease_id = d.id) AND NOT EXISTS (SELECT 1 FROM public.trial_diseases t"
        " WHERE t.disease_id = d.id)")
    sql(f"UPDATE public.{DISEASES} SET name = name || ' (renamed)'"
        f" WHERE id IN (SELECT id FROM public.{DISEASES} ORDER BY id LIMIT 3)")
    result = _changed_only(cli, tracked)
    assert _refreshed(sql) == DISEASE_READERS
    assert "refreshed: upstream mv_development_programs refreshed" in result.stdout
    conn = psycopg2.connect(tracked)
    try:
        assert_equal_to_seed(conn)   # the same rows as a full refresh of the same sources
    finally:
        conn.close()
    # mv_efficacy_evidence's check read mv_development_programs while both were refreshed
    # side by side: the check may have seen the old rows, so it runs once more.
    _changed_only(cli, tracked)
    assert _refreshed(sql) <= {"mv_efficacy_evidence"}
    # Nothing changed since: everything is left alone, and the change log was pruned.
    _changed_only(cli, tracked)
    assert set(_statuses(sql).values()) == {"unchanged"}
    _changed_only(cli, tracked)
    assert sql("SELECT count(*) FROM bioloupe_views.source_change") == [(0,)]


def test_truncate_and_a_mart_run_without_the_option_count(tracked, cli, sql):
    sql("CREATE TABLE public.keep AS SELECT * FROM public.drug_target_actions")
    sql("TRUNCATE public.drug_target_actions")
    sql("INSERT INTO public.drug_target_actions SELECT * FROM public.keep")
    _changed_only(cli, tracked)
    assert _refreshed(sql) == {"mv_drug_pipeline"}
    # A plain --select run of an upstream mart: its dependents change for the next run.
    assert refresh_views(cli, "--select", "mv_development_programs", dsn=tracked).returncode == 0
    _changed_only(cli, tracked)
    # ... and so does mv_efficacy_evidence, whose check reads it.
    assert _refreshed(sql) == {"mv_competitive_landscape", "mv_drug_pipeline",
                               "mv_efficacy_evidence"}


def test_the_trigger_logs_once_per_table_per_transaction_and_not_when_rolled_back(tracked, sql):
    sql("DELETE FROM bioloupe_views.source_change")
    conn = psycopg2.connect(tracked)
    with conn, conn.cursor() as cur:
        for _ in range(3):
            cur.execute(f"UPDATE public.{PIPELINE_ONLY} SET target_id = target_id"
                        " WHERE drug_id = (SELECT min(drug_id) FROM public.drug_target_actions)")
        cur.execute("SAVEPOINT s")
        cur.execute("UPDATE public.targets SET id = id WHERE false")
        cur.execute("ROLLBACK TO SAVEPOINT s")
        cur.execute("UPDATE public.targets SET id = id WHERE false")
    with conn.cursor() as cur:
        cur.execute("UPDATE public.drugs SET id = id WHERE false")
    conn.rollback()
    conn.close()
    assert sorted(sql("SELECT c.relid::regclass::text, count(*) FROM bioloupe_views.source_change c"
                      " GROUP BY 1")) == [("drug_target_actions", 1), ("targets", 1)]


def test_a_change_committed_by_a_session_that_never_went_idle_is_seen(tracked, cli, sql):
    """pg_stat counters would not show it yet (flushed when a backend goes idle): the change
    log is written in the writer's transaction, so it is there the moment the change commits."""
    sql("CREATE PROCEDURE public.change_then_sleep() LANGUAGE plpgsql AS $$ BEGIN"
        f" UPDATE public.{PIPELINE_ONLY} SET target_id = target_id"
        "  WHERE drug_id = (SELECT min(drug_id) FROM public.drug_target_actions);"
        " COMMIT; PERFORM pg_sleep(60); END $$")
    writer = psycopg2.connect(tracked)
    writer.autocommit = True
    thread = threading.Thread(target=lambda: _swallow(writer, "CALL public.change_then_sleep()"))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while sql("SELECT count(*) FROM bioloupe_views.source_change") == [(0,)]:
            assert time.monotonic() < deadline, "the writer's change never committed"
            time.sleep(0.1)
        assert sql("SELECT state FROM pg_stat_activity WHERE query LIKE 'CALL public.change_then%%'"
                   " AND pid <> pg_backend_pid()") == [("active",)]
        _changed_only(cli, tracked)
        assert _refreshed(sql) == {"mv_drug_pipeline"}
    finally:
        writer.cancel()
        thread.join()
        writer.close()


def test_a_writer_still_running_during_a_refresh_counts_when_it_commits(tracked, cli, sql):
    """Its change was invisible to the refresh; it commits after: the next run refreshes."""
    writer = psycopg2.connect(tracked)
    with writer.cursor() as cur:
        cur.execute(f"UPDATE public.{PIPELINE_ONLY} SET target_id = target_id"
                    " WHERE drug_id = (SELECT min(drug_id) FROM public.drug_target_actions)")
    _changed_only(cli, tracked)                      # the uncommitted change is not there yet
    assert set(_statuses(sql).values()) == {"unchanged"}
    _full_refresh(cli, tracked)                      # a full refresh, writer still open
    writer.commit()
    writer.close()
    _changed_only(cli, tracked)
    assert _refreshed(sql) == {"mv_drug_pipeline"}


def _swallow(conn, statement):
    try:
        conn.cursor().execute(statement)
    except psycopg2.Error:
        pass


def test_the_pg_cron_procedure_refreshes_only_what_changed(tracked, sql):
    sql("CALL bioloupe_views.refresh_all(p_changed_only => true)")
    assert set(_statuses(sql).values()) == {"unchanged"}
    assert sql("SELECT trigger, status FROM bioloupe_views.run ORDER BY started_at DESC LIMIT 1") == [
        ("pg_cron", "success")]
    _touch(sql, DISEASES)
    sql("CALL bioloupe_views.refresh_all(p_changed_only => true)")
    assert _refreshed(sql) == DISEASE_READERS
    # Without the option, pg_cron refreshes everything as before.
    sql("CALL bioloupe_views.refresh_all()")
    assert _refreshed(sql) == ALL


def test_untracked_sources_are_named_and_their_marts_always_refreshed(dsn, cli, sql):
    assert refresh_views(cli, dsn=dsn).returncode == 0
    result = _changed_only(cli, dsn)
    assert _refreshed(sql) == ALL
    assert "refreshed: untracked source public.clinical_trials" in result.stdout
    doctor = cli("doctor", dsn=dsn)
    assert doctor.returncode == 0
    assert "UNTRACKED public.drug_target_actions: not tracked" in doctor.stdout
    assert "17 of 17 sources untracked" in doctor.stdout

    printed = cli("track-sources", dsn=dsn)
    assert printed.returncode == 0, printed.stderr
    creates = [l for l in printed.stdout.splitlines() if l.startswith("CREATE TRIGGER")]
    assert len(creates) == 17
    assert ('CREATE TRIGGER "bioloupe_views_source_change" AFTER INSERT OR UPDATE OR DELETE OR'
            ' TRUNCATE ON "public"."drugs"') in printed.stdout
    assert sql("SELECT count(*) FROM pg_trigger WHERE tgname = 'bioloupe_views_source_change'") == [(0,)]

    # One table untracked (its trigger disabled by its owner): only its readers refresh.
    assert cli("track-sources", "--apply", dsn=dsn).returncode == 0
    assert "all 17 sources are tracked" in cli("doctor", dsn=dsn).stdout
    sql(f"ALTER TABLE public.{PIPELINE_ONLY} DISABLE TRIGGER bioloupe_views_source_change")
    _full_refresh(cli, dsn)
    result = _changed_only(cli, dsn)
    assert _refreshed(sql) == {"mv_drug_pipeline"}
    assert f"refreshed: untracked source public.{PIPELINE_ONLY}" in result.stdout
    again = cli("track-sources", dsn=dsn)
    assert [l for l in again.stdout.splitlines() if l.startswith("CREATE TRIGGER")] == [
        next(l for l in creates if f'"{PIPELINE_ONLY}"' in l)]

    removed = cli("track-sources", "--remove", dsn=dsn)
    assert len([l for l in removed.stdout.splitlines() if l.startswith("DROP TRIGGER")]) == 17
    assert cli("track-sources", "--remove", "--apply", dsn=dsn).returncode == 0
    assert sql("SELECT count(*) FROM pg_trigger WHERE tgname = 'bioloupe_views_source_change'") == [(0,)]


def test_bad_input_is_one_line(dsn, sources_dsn, cli):
    both = refresh_views(cli, "--changed-only", "--atomic", dsn=dsn)
    assert both.returncode == 2
    assert both.stderr.strip().splitlines() == [
        "Error: --changed-only cannot be combined with --atomic: an atomic run refreshes "
        "everything it selects in one transaction; drop one of them"]
    bare = cli("track-sources", dsn=sources_dsn)
    assert bare.returncode == 2
    assert bare.stderr.strip().splitlines() == [
        "Error: this database has no bioloupe_views schema: run `alembic upgrade head` first"]


def test_track_sources_in_another_schema_than_the_marts_read_says_so(dsn, cli, sql):
    sql("CREATE SCHEMA empty")
    result = cli("track-sources", dsn=dsn, env={"BIOLOUPE_SOURCE_SCHEMA": "empty"})
    assert result.returncode == 2, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
    assert "the installed marts read their sources from schema public, not empty" in result.stderr


def test_a_downgrade_that_cannot_drop_the_owners_triggers_stops_and_names_them(
        sources_dsn, sources_sql, cli, server):
    """The migrations run as a role that does not own the sources; their owner tracked them.
    Dropping a trigger takes the table's owner, so 0003 -> 0002 stops, changing nothing."""
    dbname = sources_dsn.rsplit("/", 1)[1]
    role = f"migrator_{dbname[-8:]}".lower().replace("-", "_")
    sources_sql(f"CREATE ROLE {role} LOGIN PASSWORD 'secret-pw'")
    sources_sql(f"GRANT CREATE ON DATABASE {dbname} TO {role}")
    sources_sql(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
    sources_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    migrator = f"postgresql://{role}:secret-pw@127.0.0.1:{server.port}/{dbname}"
    migrate.upgrade(migrator)
    tracked = cli("track-sources", "--apply", dsn=sources_dsn)       # as the sources' owner
    assert tracked.returncode == 0, tracked.stderr

    with pytest.raises(Exception) as refused:
        migrate.downgrade(migrator, "0002")
    message = str(refused.value).splitlines()[0]
    assert "cannot downgrade: the change-tracking triggers on public.clinical_trials," in message
    assert ("belong to their tables' owners; as the owner, run `bioloupe-views track-sources "
            "--remove --apply`") in message
    # The whole downgrade is one transaction: nothing of it stays, not even its first steps.
    assert sources_sql("SELECT version_num FROM public.bioloupe_views_alembic_version") == [
        (ScriptDirectory.from_config(migrate.alembic_config(sources_dsn)).get_current_head(),)]
    assert sources_sql("SELECT count(*) FROM pg_trigger"
                       " WHERE tgname = 'bioloupe_views_source_change'") == [(17,)]

    assert cli("track-sources", "--remove", "--apply", dsn=sources_dsn).returncode == 0
    migrate.downgrade(migrator, "0002")
    assert sources_sql("SELECT version_num FROM public.bioloupe_views_alembic_version") == [("0002",)]


def test_the_refresher_role_runs_changed_only_and_the_writers_need_no_right_on_the_log(
        tracked, cli, sql, server):
    """The refresher owns nothing: it reads the change log and prunes it through the
    engine. A source writer with no right on bioloupe_views still logs its changes."""
    from bioloupe_views import roles
    dbname = tracked.rsplit("/", 1)[1]
    refresher, writer = (f"{kind}_{dbname[-8:]}".lower() for kind in ("refresher", "writer"))
    for role in (refresher, writer):
        sql(f"CREATE ROLE {role} LOGIN PASSWORD 'secret-pw'")
    conn = psycopg2.connect(tracked)
    with conn, conn.cursor() as cur:
        roles.grant_refresher(cur, refresher)
    conn.close()
    sql(f"GRANT SELECT, UPDATE ON public.{PIPELINE_ONLY} TO {writer}")
    as_writer = psycopg2.connect(f"postgresql://{writer}:secret-pw@127.0.0.1:{server.port}/{dbname}")
    with as_writer, as_writer.cursor() as cur:
        cur.execute(f"UPDATE public.{PIPELINE_ONLY} SET target_id = target_id"
                    " WHERE drug_id = (SELECT min(drug_id) FROM public.drug_target_actions)")
    as_writer.close()
    assert sql("SELECT count(*) FROM bioloupe_views.source_change") == [(1,)]
    as_refresher = f"postgresql://{refresher}:secret-pw@127.0.0.1:{server.port}/{dbname}"
    _changed_only(cli, as_refresher)
    assert _refreshed(sql) == {"mv_drug_pipeline"}
    _changed_only(cli, as_refresher)
    assert sql("SELECT count(*) FROM bioloupe_views.source_change") == [(0,)]
