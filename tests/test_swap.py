"""The swap publish (--strategy swap and auto): each mart built aside in a stage schema of
its own, audited there, and swapped in with the marts that read it in one short
transaction; what users built on the marts follows, or the mart falls back to concurrent."""

from __future__ import annotations

import psycopg2
import pytest

from bioloupe_views import engine
from bioloupe_views.dev import synthetic

from .conftest import add_check, assert_equal_to_seed


def _run(dsn, strategy="swap", include=(), **options):
    return engine.run(dsn, include=include,
                      options=engine.Options(strategy=strategy, threads=2, **options))


def _by_mart(result):
    return {r.mart: r for r in result.results}


def _stages(sql):
    return sql("SELECT n.nspname FROM pg_namespace n WHERE n.nspname LIKE 'bioloupe_views_stage%'"
               " OR n.nspname LIKE 'bioloupe_views_retired%'")


def _oid(sql, mart):
    return sql("SELECT %s::regclass::oid", (f"public.{mart}",))[0][0]


def test_a_swap_publishes_every_mart_equal_to_the_seed_and_leaves_nothing_aside(dsn, sql):
    with psycopg2.connect(dsn) as conn:
        synthetic.mutate(conn)
    conn.close()
    before = {m: _oid(sql, m) for m in ("mv_drug_trials", "mv_development_programs")}
    result = _run(dsn)
    assert result.ok, "; ".join(f"{r.mart} {r.status} {r.error}" for r in result.results)
    for r in result.results:
        assert (r.mode, r.strategy, r.status) == ("swap", "swap", "success"), r
        assert r.rows and r.rows > 0 and r.checks, r
        assert all(c["status"] in ("pass", "warn") for c in r.checks), r.checks
    assert all(_oid(sql, m) != oid for m, oid in before.items())  # new heaps, swapped in
    assert _stages(sql) == []
    assert sql("SELECT count(*) FROM bioloupe_views.stage")[0][0] == 0
    with psycopg2.connect(dsn) as conn:
        assert_equal_to_seed(conn)
    conn.close()
    # The live checks read the new marts: they run, and a later concurrent run works.
    assert _run(dsn, "concurrent").ok
    rows = sql("SELECT mode, strategy, status FROM bioloupe_views.run_log"
               " WHERE run_id = %s", (result.run_id,))
    assert {tuple(r) for r in rows} == {("swap", "swap", "success")}


def test_a_users_view_and_its_grants_survive_a_swap_and_read_the_new_rows(dsn, sql):
    sql("CREATE ROLE app_reader NOLOGIN")
    sql("CREATE SCHEMA app")
    sql("CREATE VIEW app.trial_count WITH (security_barrier = true) AS"
        " SELECT count(*) AS n FROM public.mv_drug_trials")
    sql("GRANT USAGE ON SCHEMA app TO app_reader")
    sql("GRANT SELECT ON app.trial_count TO app_reader")
    sql("GRANT SELECT ON public.mv_drug_trials TO app_reader")
    sql("COMMENT ON MATERIALIZED VIEW public.mv_drug_trials IS 'kept by the swap'")
    sql("ALTER MATERIALIZED VIEW public.mv_drug_trials SET (autovacuum_vacuum_scale_factor = 0.01)")
    sql("ALTER MATERIALIZED VIEW public.mv_drug_trials ALTER COLUMN clinical_trial_id SET STATISTICS 500")
    sql("CREATE INDEX users_own_index ON public.mv_drug_trials (clinical_trial_id, drug_id)")
    view_oid = sql("SELECT 'app.trial_count'::regclass::oid")[0][0]
    with psycopg2.connect(dsn) as conn:
        synthetic.mutate(conn)
    conn.close()
    result = _run(dsn, include=("mv_drug_trials",))
    mart = _by_mart(result)["mv_drug_trials"]
    assert (mart.status, mart.mode) == ("success", "swap"), mart
    assert sql("SELECT 'app.trial_count'::regclass::oid")[0][0] == view_oid
    assert sql("SELECT n FROM app.trial_count")[0][0] == sql(
        "SELECT count(*) FROM public.mv_drug_trials")[0][0]
    assert sql("SELECT reloptions FROM pg_class WHERE oid = 'app.trial_count'::regclass")[0][0] \
        == ["security_barrier=true"]
    assert sql("SELECT has_table_privilege('app_reader', 'app.trial_count', 'SELECT'),"
               " has_table_privilege('app_reader', 'public.mv_drug_trials', 'SELECT')")[0] == (True, True)
    assert sql("SELECT obj_description('public.mv_drug_trials'::regclass, 'pg_class')")[0][0] \
        == "kept by the swap"
    assert sql("SELECT reloptions FROM pg_class WHERE oid = 'public.mv_drug_trials'::regclass")[0][0] \
        == ["autovacuum_vacuum_scale_factor=0.01"]
    assert sql("SELECT attstattarget FROM pg_attribute WHERE attrelid = 'public.mv_drug_trials'::regclass"
               " AND attname = 'clinical_trial_id'")[0][0] == 500
    assert sql("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
               " AND indexname = 'users_own_index'")[0][0] == 1
    assert _stages(sql) == []


def test_a_materialized_view_of_a_user_makes_its_mart_fall_back_to_concurrent(dsn, sql):
    sql("CREATE MATERIALIZED VIEW public.users_pipeline AS SELECT drug_id FROM public.mv_drug_pipeline")
    result = _run(dsn, include=("mv_development_programs+",))
    marts = _by_mart(result)
    assert result.ok
    assert marts["mv_drug_pipeline"].mode == "concurrent"
    assert "materialized view public.users_pipeline" in marts["mv_drug_pipeline"].strategy_reason
    # Its upstream cannot be swapped either: the swap would have to bring it along.
    assert marts["mv_development_programs"].mode == "concurrent"
    assert "mv_drug_pipeline cannot be swapped" in marts["mv_development_programs"].strategy_reason
    assert sql("SELECT count(*) FROM public.users_pipeline")[0][0] > 0


def test_selecting_a_mart_for_a_swap_brings_its_dependent_marts_along(dsn):
    result = _run(dsn, include=("mv_development_programs",))
    marts = _by_mart(result)
    assert set(marts) == {"mv_development_programs", "mv_competitive_landscape", "mv_drug_pipeline"}
    for name in ("mv_competitive_landscape", "mv_drug_pipeline"):
        assert marts[name].mode == "swap" and marts[name].status == "success"
        assert "with mv_development_programs" in marts[name].strategy_reason
        assert "brought along" in marts[name].strategy_reason


def test_a_blocked_dependent_holds_its_group_back_and_nothing_live_changes(dsn, sql):
    add_check(dsn, "mv_drug_pipeline", "assert_pipeline_fails_in_test",
              "SELECT drug_id FROM public.mv_drug_pipeline LIMIT 1")
    before = {m: (_oid(sql, m), sql(f"SELECT count(*) FROM public.{m}")[0][0])
              for m in ("mv_development_programs", "mv_competitive_landscape", "mv_drug_pipeline")}
    sql("DELETE FROM drug_ownerships WHERE id IN (SELECT id FROM drug_ownerships LIMIT 5)")
    result = _run(dsn, include=("mv_development_programs+",))
    marts = _by_mart(result)
    assert marts["mv_drug_pipeline"].status == "check_failed", marts["mv_drug_pipeline"].error
    for name in ("mv_development_programs", "mv_competitive_landscape"):
        assert marts[name].status == "skipped", marts[name]
        assert "held back: mv_drug_pipeline" in marts[name].error
    after = {m: (_oid(sql, m), sql(f"SELECT count(*) FROM public.{m}")[0][0]) for m in before}
    assert after == before
    assert _stages(sql) == []


def test_a_swap_whose_lock_never_comes_is_an_error_naming_the_holder(dsn, sql, server):
    holder = psycopg2.connect(dsn, application_name="long-reader")
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute("SELECT count(*) FROM public.mv_drug_trials")
    try:
        before = _oid(sql, "mv_drug_trials")
        result = engine.run(dsn, include=("mv_drug_trials",), options=engine.Options(
            strategy="swap", threads=1, swap_wait="1s"))
        mart = _by_mart(result)["mv_drug_trials"]
        assert mart.status == "error", mart
        assert "could not take the swap's locks" in mart.error and "long-reader" in mart.error
        assert _oid(sql, "mv_drug_trials") == before
        assert _stages(sql) == []
    finally:
        holder.close()


@pytest.mark.parametrize("strategy", ["swap", "auto"])
def test_an_atomic_run_refuses_a_swap_in_one_line(dsn, strategy):
    with pytest.raises(psycopg2.Error, match="atomic run .* needs strategy concurrent"):
        _run(dsn, strategy, atomic=True)


def _flip_ownerships(sql, n=10):
    sql("UPDATE public.drug_ownerships SET is_current = NOT is_current"
        " WHERE id IN (SELECT id FROM public.drug_ownerships ORDER BY id LIMIT %s)", (n,))


def test_changed_only_swaps_what_changed_and_the_marts_that_read_a_swapped_one(dsn, cli, sql):
    assert cli("track-sources", "--apply", dsn=dsn).returncode == 0
    assert _run(dsn, "concurrent").ok
    _flip_ownerships(sql)
    marts = _by_mart(_run(dsn, changed_only=True))
    assert {m: (r.status, r.mode) for m, r in marts.items()} == {
        "mv_development_programs": ("unchanged", None), "mv_drug_trials": ("unchanged", None),
        "mv_efficacy_evidence": ("unchanged", None),
        "mv_competitive_landscape": ("success", "swap"), "mv_drug_pipeline": ("success", "swap")}
    # An upstream swapped takes the marts reading it along, whatever their own sources say:
    # they would read the retired relation otherwise.
    sql("UPDATE public.trial_diseases SET disease_id = disease_id"
        " WHERE id IN (SELECT id FROM public.trial_diseases ORDER BY id LIMIT 10)")
    marts = _by_mart(_run(dsn, changed_only=True))
    assert marts["mv_development_programs"].mode == "swap"
    for name in ("mv_competitive_landscape", "mv_drug_pipeline"):
        assert (marts[name].status, marts[name].mode) == ("success", "swap")
        assert marts[name].reason == "upstream mv_development_programs is swapped in this run"
    assert _stages(sql) == []
    with psycopg2.connect(dsn) as conn:
        assert_equal_to_seed(conn)
    conn.close()
    # Published together, they are not stale for each other in the next run.
    marts = _by_mart(_run(dsn, changed_only=True))
    assert {r.status for r in marts.values()} == {"unchanged"}


def test_a_concurrent_refresh_records_what_it_changed_and_auto_chooses_from_it(dsn, sql):
    _flip_ownerships(sql, 40)
    marts = _by_mart(_run(dsn, "concurrent"))
    landscape = marts["mv_competitive_landscape"]
    assert landscape.inserted > 0 and landscape.deleted > 0
    assert 0 < landscape.changed_share < 1
    assert marts["mv_drug_trials"].inserted == 0 and marts["mv_drug_trials"].changed_share == 0
    share = landscape.changed_share
    # Over the threshold: swapped, and its readers with it; at most: concurrent. Each says why.
    auto = _by_mart(_run(dsn, "auto", swap_share=share / 2))
    assert auto["mv_competitive_landscape"].mode == "swap"
    assert "changed" in auto["mv_competitive_landscape"].strategy_reason
    assert auto["mv_drug_trials"].mode == "concurrent"
    assert "changed 0.0% of its rows (at most" in auto["mv_drug_trials"].strategy_reason
    auto = _by_mart(_run(dsn, "auto", swap_share=0.99))
    assert {r.mode for r in auto.values()} == {"concurrent"}
    logged = sql("SELECT strategy, strategy_reason IS NOT NULL FROM bioloupe_views.run_log"
                 " WHERE run_id = (SELECT run_id FROM bioloupe_views.run ORDER BY started_at DESC LIMIT 1)")
    assert {tuple(r) for r in logged} == {("concurrent", True)}


def test_auto_never_swaps_a_mart_a_user_built_on(dsn, sql):
    sql("CREATE VIEW public.users_trials AS SELECT drug_id FROM public.mv_drug_trials")
    sql("REFRESH MATERIALIZED VIEW public.mv_drug_trials WITH NO DATA")  # auto would swap it
    marts = _by_mart(_run(dsn, "auto", include=("mv_drug_trials",)))
    assert marts["mv_drug_trials"].mode == "plain"   # unpopulated: CONCURRENTLY cannot
    assert marts["mv_drug_trials"].strategy_reason == "concurrent: view public.users_trials reads it"
    sql("DROP VIEW public.users_trials")
    sql("REFRESH MATERIALIZED VIEW public.mv_drug_trials WITH NO DATA")
    marts = _by_mart(_run(dsn, "auto", include=("mv_drug_trials",)))
    assert (marts["mv_drug_trials"].mode, marts["mv_drug_trials"].strategy_reason) == (
        "swap", "swap: it is not populated")


def test_the_cli_line_says_swapped_and_why_and_refuses_atomic_in_one_line(dsn, cli):
    result = cli("refresh", "--strategy", "swap", "-s", "mv_drug_trials", dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK mv_drug_trials" in result.stdout and "swapped in " in result.stdout
    assert "swap: --strategy swap" in result.stdout
    result = cli("refresh", "-s", "mv_drug_trials", dsn=dsn, env={"BIOLOUPE_STRATEGY": "swap"})
    assert "swapped in " in result.stdout
    result = cli("refresh", "-s", "mv_drug_trials", dsn=dsn)
    assert "% changed, in " in result.stdout
    bad = cli("refresh", "--atomic", "--strategy", "swap", dsn=dsn)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "--atomic cannot be combined with --strategy swap" in bad.stderr
    bad = cli("refresh", "--strategy", "fast", dsn=dsn)
    assert bad.returncode == 2 and "'fast' is not one of" in bad.stderr


def test_refresh_all_swaps_with_the_same_statuses_and_messages(dsn, sql):
    add_check(dsn, "mv_drug_pipeline", "assert_pipeline_fails_in_test",
              "SELECT drug_id FROM public.mv_drug_pipeline LIMIT 1")
    engine_run = _by_mart(_run(dsn, include=("mv_development_programs+",)))
    sql("CALL bioloupe_views.refresh_all(ARRAY['mv_development_programs', 'mv_competitive_landscape',"
        " 'mv_drug_pipeline'], p_strategy => 'swap')")
    logged = {m: (s, e) for m, s, e in sql(
        "SELECT mart, status, error FROM bioloupe_views.run_log WHERE run_id ="
        " (SELECT run_id FROM bioloupe_views.run WHERE trigger = 'pg_cron')")}
    assert logged == {m: (r.status, r.error) for m, r in engine_run.items()}
    assert logged["mv_development_programs"][0] == "skipped"
    assert _stages(sql) == []
    from .conftest import remove_check
    remove_check(dsn, "assert_pipeline_fails_in_test")
    sql("CALL bioloupe_views.refresh_all(p_strategy => 'swap')")
    assert sql("SELECT DISTINCT mode, status FROM bioloupe_views.run_log WHERE run_id ="
               " (SELECT run_id FROM bioloupe_views.run ORDER BY started_at DESC LIMIT 1)") == [
        ("swap", "success")]
    assert _stages(sql) == []


def test_a_reader_polling_every_10ms_never_waits_over_100ms_during_swaps(dsn):
    import threading
    import time
    stop, worst = threading.Event(), []

    def poll():
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                t0 = time.perf_counter()
                cur.execute("SELECT count(*) FROM public.mv_competitive_landscape"
                            " WHERE disease_id = 1")
                cur.fetchall()
                worst.append(time.perf_counter() - t0)
                time.sleep(0.01)
        conn.close()

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for _ in range(3):
            assert _run(dsn).ok
    finally:
        stop.set()
        reader.join()
    assert len(worst) > 20 and max(worst) < 0.1, max(worst)


def test_what_a_killed_run_left_aside_is_cleared_by_the_next_run(dsn, sql, cli):
    import subprocess
    import sys
    import time
    from pathlib import Path
    # Hold a source the landscape reads: its build waits, its upstream is already aside.
    blocker = psycopg2.connect(dsn)
    blocker.autocommit = False
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE public.organisations IN ACCESS EXCLUSIVE MODE")
    before = {m: _oid(sql, m) for m in ("mv_development_programs", "mv_competitive_landscape")}
    exe = Path(sys.executable).parent / "refresh-views"
    proc = subprocess.Popen([str(exe), "--dsn", dsn, "--strategy", "swap", "--threads", "1",
                             "-s", "mv_development_programs+"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            staged = sql("SELECT count(*) FROM bioloupe_views.run_log WHERE status = 'staged'")[0][0]
            if staged:
                break
            time.sleep(0.05)
        assert staged, "mv_development_programs was never built aside"
        proc.kill()
        proc.wait(10)
    finally:
        blocker.close()
    time.sleep(2)  # the killed client's backends notice within CLIENT_CHECK
    assert {m: _oid(sql, m) for m in before} == before
    assert _stages(sql) != []    # the committed build aside of mv_development_programs
    result = cli("refresh", "--strategy", "swap", dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _stages(sql) == []
    assert sql("SELECT count(*) FROM bioloupe_views.stage")[0][0] == 0
    with psycopg2.connect(dsn) as conn:
        assert_equal_to_seed(conn)
    conn.close()


def test_a_statement_timeout_during_the_build_fails_the_mart_and_nothing_live_changes(dsn, sql):
    before = {m: _oid(sql, m) for m in ("mv_drug_trials", "mv_efficacy_evidence")}
    sql("SELECT pg_sleep(0)")
    result = _run(dsn, include=("mv_drug_trials", "mv_efficacy_evidence"), statement_timeout="1ms")
    for r in result.results:
        assert r.status == "error" and "statement timeout" in r.error, r
    assert {m: _oid(sql, m) for m in before} == before
    assert _stages(sql) == []
    assert sql("SELECT pg_try_advisory_lock(1651470447, 1)") == [(True,)]


def test_0007_down_to_0006_and_up_again_keeps_history(dsn, cli, sql):
    """From the previous head on a populated database with run history, swap leftovers
    included: down drops them and keeps every run; up again, the next swap works."""
    from bioloupe_views import migrate
    assert _run(dsn, "concurrent").ok
    assert _run(dsn).ok
    # A run cut short leaves a build aside committed.
    sql("INSERT INTO bioloupe_views.stage (schema_name, run_id, mart, kind)"
        " VALUES ('bioloupe_views_stage_leftover', gen_random_uuid(), 'mv_drug_trials', 'stage')")
    sql("CREATE SCHEMA bioloupe_views_stage_leftover")
    sql("CREATE MATERIALIZED VIEW bioloupe_views_stage_leftover.mv_drug_trials AS SELECT 1 AS x")

    def history():
        return sql("SELECT run_id::text, mart, status FROM bioloupe_views.run_log ORDER BY id")

    before = history()
    migrate.downgrade(dsn, "0006")
    assert sql("SELECT version_num FROM public.bioloupe_views_alembic_version") == [("0006",)]
    assert history() == before
    assert sql("SELECT to_regclass('bioloupe_views.stage')") == [(None,)]
    assert _stages(sql) == []
    assert sql("SELECT DISTINCT mode FROM bioloupe_views.run_log ORDER BY 1") == [
        ("concurrent",), ("plain",)]
    result = cli("refresh", dsn=dsn)            # 0006's engine, driven by this code
    assert result.returncode == 0, result.stdout + result.stderr
    migrate.upgrade(dsn)
    assert history()[:len(before)] == before
    assert _run(dsn).ok
    assert _stages(sql) == []


def test_sigterm_while_the_swap_waits_for_its_locks_changes_nothing_live(dsn, sql):
    """A long reader holds the mart; the swap retries; SIGTERM stops the run within
    seconds, the live mart keeps its data, the refresh lock is free, nothing stays aside."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path
    reader = psycopg2.connect(dsn)
    reader.autocommit = False
    with reader.cursor() as cur:
        cur.execute("SELECT count(*) FROM public.mv_drug_trials")
    before = _oid(sql, "mv_drug_trials")
    exe = Path(sys.executable).parent / "refresh-views"
    proc = subprocess.Popen([str(exe), "--dsn", dsn, "--strategy", "swap", "-s", "mv_drug_trials"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            if sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'refresh-views'"
                   " AND query LIKE '%refresh_mart%' AND (wait_event = 'PgSleep'"
                   " OR wait_event_type = 'Lock')")[0][0]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the swap never waited for its locks")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 10, out
        assert proc.returncode != 0, out
    finally:
        reader.close()
    assert _oid(sql, "mv_drug_trials") == before
    assert sql("SELECT status FROM bioloupe_views.run_log WHERE mart = 'mv_drug_trials'"
               " ORDER BY id DESC LIMIT 1") == [("cancelled",)]
    assert sql("SELECT pg_try_advisory_lock(1651470447, 1)") == [(True,)]
    sql("SELECT pg_advisory_unlock(1651470447, 1)")
    assert _run(dsn, include=("mv_drug_trials",)).ok
    assert _stages(sql) == []


def test_a_crash_during_a_swap_run_keeps_the_marts_and_the_next_run_clears_the_stage(cli):
    """pg_ctl stop -m immediate while a group waits aside: after the restart the live marts
    are as they were, and the next run drops what was committed aside and publishes."""
    import time
    from bioloupe_views.dev.pgserver import ThrowawayServer
    from .conftest import TEST_SCALE, _sql_runner
    server = ThrowawayServer(settings={"synchronous_commit": "on"}).start()
    try:
        dsn = synthetic.migrated_database(server, "swapcrash", TEST_SCALE)
        sql, conn = _sql_runner(dsn)
        before = {m: _oid(sql, m) for m in ("mv_development_programs", "mv_competitive_landscape")}
        blocker = psycopg2.connect(dsn)
        blocker.cursor().execute("LOCK TABLE public.organisations IN ACCESS EXCLUSIVE MODE")
        from tests.test_faults import Background
        run = Background(cli, "refresh", "--strategy", "swap", "--threads", "1",
                         "-s", "mv_development_programs+", dsn=dsn)
        for _ in range(200):
            if sql("SELECT count(*) FROM bioloupe_views.run_log WHERE status = 'staged'")[0][0]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("nothing was built aside")
        conn.close()
        server.crash()
        run.join()
        server.restart()
        sql, conn = _sql_runner(dsn)
        assert {m: _oid(sql, m) for m in before} == before
        assert _stages(sql) != []
        result = cli("refresh", "--strategy", "swap", dsn=dsn)
        assert result.returncode == 0, result.stdout + result.stderr
        assert _stages(sql) == []
        assert_equal_to_seed(conn)
        conn.close()
    finally:
        server.stop()
