"""bioloupe_views.dagster on a real PostgreSQL with real Dagster: the assets are the marts,
materialized by the same engine as refresh-views (lock, audit, run log), and their graph and
checks, read from the files, are what the database's catalog says."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

dg = pytest.importorskip("dagster")

from bioloupe_views import definitions  # noqa: E402
from bioloupe_views.dagster import (BioloupeTranslator, BioloupeViewsResource,  # noqa: E402
                                    build_definitions, defs as default_defs, lineage)
from bioloupe_views.dev import synthetic  # noqa: E402
from tests.conftest import add_check, remove_check  # noqa: E402

pytestmark = pytest.mark.dagster

ROOT_MART = "mv_development_programs"
DEPENDENTS = {"mv_competitive_landscape", "mv_drug_pipeline"}
INDEPENDENT = {"mv_drug_trials", "mv_efficacy_evidence"}
MARTS = {ROOT_MART} | DEPENDENTS | INDEPENDENT


def key(mart: str) -> "dg.AssetKey":
    return dg.AssetKey(["public", mart])


def _defs(dsn: str, **resource) -> "dg.Definitions":
    return build_definitions(resource=BioloupeViewsResource(dsn=dsn, **resource))


def _materialize(defs, selection=None, instance=None):
    return dg.materialize(defs.assets, resources=defs.resources, selection=selection,
                          instance=instance or dg.DagsterInstance.ephemeral(),
                          raise_on_error=False)


def _materialized(result) -> dict:
    return {e.materialization.asset_key: e.materialization
            for e in result.get_asset_materialization_events()}


def _check_results(result) -> dict:
    return {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}


def _fingerprints(sql) -> dict[str, str]:
    return {m: sql(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM public.{m} t")[0][0]
            for m in sorted(MARTS)}


def _run_log(sql, run_id: str) -> dict[str, str]:
    rows = sql("SELECT r.trigger, l.mart, l.status FROM bioloupe_views.run r"
               " JOIN bioloupe_views.run_log l USING (run_id) WHERE r.trigger_ref = %s", (run_id,))
    assert {t for t, _, _ in rows} <= {"dagster"}
    return {mart: status for _, mart, status in rows}


def test_definitions_from_the_files_equal_the_catalog(dsn, sql):
    """Graph (mart -> mart, mart -> source table) and checks, as loaded without a database,
    against pg_depend and bioloupe_views.mart_check after `alembic upgrade head`."""
    graph = default_defs.resolve_asset_graph()
    catalog_marts = {m for (m,) in sql("SELECT name FROM bioloupe_views.mart")}
    assert catalog_marts == set(lineage.marts()) == MARTS
    mart_edges = sql("SELECT mart, depends_on FROM bioloupe_views.mart_dependency")
    source_edges = sql((definitions.SQL_DIR / "_queries" / "mart_sources.sql").read_text())
    for mart in MARTS:
        expected = {key(dep) for m, dep in mart_edges if m == mart}
        expected |= {dg.AssetKey([relation]) for m, _, relation in source_edges if m == mart}
        assert graph.get(key(mart)).parent_keys == expected, mart
    stored = {(name, mart, severity) for name, mart, severity in sql(
        "SELECT name, mart, severity FROM bioloupe_views.mart_check")}
    specs = {(s.name, s.asset_key.path[-1], s.blocking)
             for a in default_defs.assets if isinstance(a, dg.AssetsDefinition)
             for s in a.check_specs}
    assert specs == {(n, m, sev == "error") for n, m, sev in stored}
    assert len(specs) == 40
    # The code version follows the migrated version of each mart.
    versions = dict(sql("SELECT name, version FROM bioloupe_views.mart"))
    for mart in MARTS:
        assert graph.get(key(mart)).code_version.startswith(f"{mart}-v{versions[mart]}-")
    dg.Definitions.validate_loadable(default_defs)


def test_all_marts_materialize_like_a_cli_refresh(dsn, sql, cli):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    before = _fingerprints(sql)
    synthetic.mutate(conn)
    conn.close()

    result = _materialize(_defs(dsn))
    assert result.success
    materialized = _materialized(result)
    assert set(materialized) == {key(m) for m in MARTS}
    after = _fingerprints(sql)
    assert after != before
    assert _run_log(sql, result.run_id) == {m: "success" for m in MARTS}

    meta = materialized[key("mv_drug_trials")].metadata
    assert meta["dagster/row_count"].value == sql("SELECT count(*) FROM public.mv_drug_trials")[0][0]
    assert meta["dagster/table_name"].value == "public.mv_drug_trials"
    columns = [c.name for c in meta["dagster/column_schema"].schema.columns]
    assert columns == [c for (c,) in sql(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'public.mv_drug_trials'::regclass"
        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum")]
    assert meta["refresh_mode"].value == "concurrent"
    assert meta["duration_seconds"].value >= 0
    checks = _check_results(result)
    assert len(checks) == 40
    assert all(c.passed or c.severity == dg.AssetCheckSeverity.WARN for c in checks.values())
    assert all(c.passed for c in checks.values() if c.blocking)

    assert cli("refresh", dsn=dsn).returncode == 0
    assert _fingerprints(sql) == after


def test_a_subset_refreshes_just_that_subset(dsn, sql):
    result = _materialize(_defs(dsn), selection=[key("mv_drug_trials"), key(ROOT_MART)])
    assert result.success
    assert set(_materialized(result)) == {key("mv_drug_trials"), key(ROOT_MART)}
    assert _run_log(sql, result.run_id) == {"mv_drug_trials": "success", ROOT_MART: "success"}
    assert {c.asset_key for c in _check_results(result).values()} == {
        key("mv_drug_trials"), key(ROOT_MART)}


def _fail(sql, check: str) -> None:
    """Make a check of the files find one offending row, as a bad migration or data would."""
    (relation,) = sql("SELECT relation FROM bioloupe_views.mart_check WHERE name = %s", (check,))[0]
    sql(f"DROP VIEW bioloupe_views_checks.{relation}")
    sql(f"CREATE VIEW bioloupe_views_checks.{relation} AS SELECT 1 AS x")


ERROR_CHECK = "relationships_mv_development_programs_drug_id__id__drugs"  # reads its view
WARN_CHECK = "assert_mv_efficacy_evidence_trial_pairs_in_programs"


def test_an_error_check_blocks_its_mart_and_dependents_a_warn_check_only_warns(dsn, sql):
    _fail(sql, ERROR_CHECK)
    _fail(sql, WARN_CHECK)
    add_check(dsn, "mv_drug_trials", "db_only_warn", "SELECT 1 AS x", severity="warn")
    before = _fingerprints(sql)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    synthetic.mutate(conn)
    conn.close()
    result = _materialize(_defs(dsn))
    assert not result.success
    assert set(_materialized(result)) == {key(m) for m in INDEPENDENT}
    log = _run_log(sql, result.run_id)
    assert log == {ROOT_MART: "check_failed", **{m: "skipped" for m in DEPENDENTS},
                   **{m: "success" for m in INDEPENDENT}}
    after = _fingerprints(sql)
    for mart in MARTS:
        assert (after[mart] == before[mart]) == (mart not in INDEPENDENT), mart

    checks = _check_results(result)
    assert len(checks) == 40  # a result for every check of the definitions, run or not
    failed = checks[ERROR_CHECK]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR and failed.blocking
    warned = checks[WARN_CHECK]
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.metadata["failures"].value == 1
    for name, evaluation in checks.items():
        if evaluation.asset_key.path[-1] in DEPENDENTS:
            assert not evaluation.passed and evaluation.metadata["status"].value == "not run"
        elif name not in (ERROR_CHECK, WARN_CHECK):
            assert evaluation.passed or evaluation.severity == dg.AssetCheckSeverity.WARN, name
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "mv_development_programs check_failed" in failure
    remove_check(dsn, "db_only_warn")


def test_checks_selected_without_their_mart_run_on_their_own(dsn, sql):
    _fail(sql, WARN_CHECK)
    selection = dg.AssetSelection.checks_for_assets(key("mv_efficacy_evidence"))
    result = _materialize(_defs(dsn), selection=selection)
    assert result.success
    assert not _materialized(result)
    checks = _check_results(result)
    assert len(checks) == 11
    assert not checks[WARN_CHECK].passed and checks[WARN_CHECK].metadata["failures"].value == 1
    assert sql("SELECT count(*) FROM bioloupe_views.run") == [(0,)]


def test_an_upstream_materialization_requests_exactly_the_marts_that_read_it(dsn, sql):
    defs = _defs(dsn)
    with dg.instance_for_test() as instance:
        # The sources exist and Dagster refreshed every mart, checks passing.
        for spec in defs.assets:
            if isinstance(spec, dg.AssetSpec):
                instance.report_runless_asset_event(dg.AssetMaterialization(spec.key))
        assert _materialize(defs, instance=instance).success
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0
        instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey("drug_ownerships")))
        second = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                                   cursor=first.cursor)
    readers = {m for m, _, relation in sql(
        (definitions.SQL_DIR / "_queries" / "mart_sources.sql").read_text())
        if relation == "drug_ownerships"}
    assert readers == {"mv_competitive_landscape", "mv_drug_pipeline"}
    requested = {k for k in (key(m) for m in MARTS) if second.get_num_requested(k)}
    assert requested == {key(m) for m in readers}


def test_a_cli_run_holding_the_lock_makes_the_step_wait_then_fail(dsn, sql, cli):
    blocker = psycopg2.connect(dsn)
    blocker.cursor().execute("LOCK TABLE public.trial_arm_results IN ACCESS EXCLUSIVE MODE")
    holder = threading.Thread(target=cli, args=("refresh",), kwargs={"dsn": dsn})
    holder.start()
    try:
        for _ in range(200):
            if sql("SELECT count(*) FROM bioloupe_views.refresh_lock_holder()") == [(1,)]:
                break
            time.sleep(0.1)
        started = time.monotonic()
        result = _materialize(_defs(dsn, lock_wait="2s"))
        waited = time.monotonic() - started
    finally:
        blocker.rollback()
        blocker.close()
        holder.join()
    assert not result.success and not _materialized(result)
    assert waited >= 2
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "(cli)" in message and "waited 2s" in message and "lock_wait" in message, message
    checks = _check_results(result)
    assert len(checks) == 40 and not any(c.passed for c in checks.values())
    reason = {c.metadata["reason"].value for c in checks.values()}
    assert len(reason) == 1 and "(cli)" in reason.pop()
    assert sql("SELECT count(*) FROM bioloupe_views.run WHERE trigger = 'dagster'") == [(0,)]


def test_the_translator_renames_keys_and_sources(dsn):
    class Prefixed(BioloupeTranslator):
        def get_asset_key(self, mart):
            return dg.AssetKey(["warehouse", mart])

        def get_source_asset_key(self, table):
            return dg.AssetKey(["raw", table])

        def get_group_name(self, mart):
            return "marts"

    defs = build_definitions(translator=Prefixed())
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["warehouse", "mv_drug_pipeline"]))
    assert dg.AssetKey(["warehouse", ROOT_MART]) in node.parent_keys
    assert dg.AssetKey(["raw", "drug_ownerships"]) in node.parent_keys
    assert node.group_name == "marts"


def test_definitions_validate_with_the_database_down(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIOLOUPE_", "PG"))}
    env.update(BIOLOUPE_DATABASE_URL="postgresql://nobody@127.0.0.1:1/nowhere",
               DAGSTER_HOME=str(tmp_path))
    exe = os.path.join(os.path.dirname(sys.executable), "dagster")
    result = subprocess.run([exe, "definitions", "validate", "-m", "bioloupe_views.dagster"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_automation_and_freshness_options():
    from datetime import timedelta

    graph = default_defs.resolve_asset_graph()
    labels = str(graph.get(key(ROOT_MART)).automation_condition)
    assert "eager" in labels and "all_deps_blocking_checks_passed" in labels
    defs = build_definitions(on_cron="0 3 * * *",
                             freshness_policy=dg.FreshnessPolicy.time_window(
                                 fail_window=timedelta(hours=26)))
    dg.Definitions.validate_loadable(defs)
    node = defs.resolve_asset_graph().get(key(ROOT_MART))
    assert "on_cron(0 3 * * *, UTC)" in str(node.automation_condition)
    assert node.freshness_policy is not None
    assert build_definitions(automation=None).resolve_asset_graph().get(
        key(ROOT_MART)).automation_condition is None


def test_a_missing_database_setting_fails_the_step_with_one_line(monkeypatch):
    for name in [n for n in os.environ if n.startswith(("BIOLOUPE_", "PG"))]:
        monkeypatch.delenv(name)
    result = _materialize(build_definitions(), selection=[key("mv_drug_trials")])
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "no database configured: set BIOLOUPE_DATABASE_URL" in message


def test_dagster_asset_materialize_select_all_refreshes_every_mart(dsn, sql, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIOLOUPE_", "PG"))}
    env.update(BIOLOUPE_DATABASE_URL=dsn, DAGSTER_HOME=str(tmp_path))
    exe = os.path.join(os.path.dirname(sys.executable), "dagster")
    result = subprocess.run([exe, "asset", "materialize", "-m", "bioloupe_views.dagster",
                             "--select", "*"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (ref,) = sql("SELECT trigger_ref FROM bioloupe_views.run WHERE trigger = 'dagster'")[0]
    assert _run_log(sql, ref) == {m: "success" for m in MARTS}


def test_changed_only_leaves_unchanged_marts_and_still_reports_their_checks(dsn, sql, cli):
    assert cli("track-sources", "--apply", dsn=dsn).returncode == 0
    assert cli("refresh", "--threads", "1", dsn=dsn).returncode == 0
    result = _materialize(_defs(dsn, changed_only=True))
    assert result.success
    assert not _materialized(result)  # nothing changed, nothing materialized
    assert set(_run_log(sql, result.run_id).values()) == {"unchanged"}
    checks = _check_results(result)
    assert len(checks) == 40 and all(c.passed or c.severity == dg.AssetCheckSeverity.WARN
                                     for c in checks.values())
    # One source changes: the marts that read it are materialized, the others are not.
    sql("UPDATE public.drug_ownerships SET is_current = NOT is_current WHERE id = "
        "(SELECT min(id) FROM public.drug_ownerships)")
    again = _materialize(_defs(dsn, changed_only=True))
    assert again.success
    assert set(_materialized(again)) == {key("mv_competitive_landscape"), key("mv_drug_pipeline")}


def test_a_swap_through_dagster_has_the_same_statuses_and_messages_as_refresh_views(dsn, sql):
    """strategy='swap' on the resource: the same engine, so a blocked dependent holds its
    group back with the same words as refresh-views and refresh_all()."""
    from bioloupe_views import engine
    add_check(dsn, "mv_drug_pipeline", "assert_pipeline_fails_for_dagster",
              "SELECT drug_id FROM public.mv_drug_pipeline LIMIT 1")
    try:
        cli_run = engine.run(dsn, options=engine.Options(strategy="swap", threads=2))
        expected = {r.mart: (r.status, r.error) for r in cli_run.results}
        result = _materialize(_defs(dsn, strategy="swap"))
        rows = sql("SELECT l.mart, l.status, l.error, l.mode FROM bioloupe_views.run r"
                   " JOIN bioloupe_views.run_log l USING (run_id) WHERE r.trigger_ref = %s",
                   (result.run_id,))
        assert {m: (s, e) for m, s, e, _ in rows} == expected
        assert expected["mv_drug_pipeline"][0] == "check_failed"
        assert expected[ROOT_MART][0] == "skipped" and "held back" in expected[ROOT_MART][1]
        # mv_efficacy_evidence's checks read mv_development_programs: the same group.
        assert expected["mv_efficacy_evidence"][0] == "skipped"
        assert {mode for m, _, _, mode in rows if m == "mv_drug_trials"} == {"swap"}
        assert set(_materialized(result)) == {key("mv_drug_trials")}
    finally:
        remove_check(dsn, "assert_pipeline_fails_for_dagster")
    with pytest.raises(Exception, match="strategy='fast'"):
        BioloupeViewsResource(dsn=dsn, strategy="fast").options("a-run")
