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
    assert marts["mv_drug_pipeline"].status == "check_failed"
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
