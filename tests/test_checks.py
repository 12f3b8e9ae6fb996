"""Issue 4: the dbt tests as SQL assertions, with dbt's failure counts, run by
`bioloupe-views check`, by refresh-views (see test_refresh.py) and by the pytest plugin."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from psycopg2 import sql as pgsql

from bioloupe_views import checks, definitions
from tests.conftest import reinstall_checks, run_cli

SEED_TESTS = [
    "not_null_mv_development_programs_drug_id",
    "not_null_mv_development_programs_disease_id",
    "not_null_mv_development_programs_highest_phase_rank",
    "unique_mv_development_programs_drug_id_disease_id",
    "assert_mv_dev_programs_no_orphans",
    "not_null_mv_drug_trials_drug_id",
    "not_null_mv_drug_trials_clinical_trial_id",
    "not_null_mv_drug_trials_role",
    "accepted_values_mv_drug_trials_role",
]


def check_results(cli, dsn, tmp_path, *args):
    out = tmp_path / "checks.json"
    result = cli("check", "--json", str(out), *args, dsn=dsn)
    return result, {r["name"]: r for r in json.loads(out.read_text())["results"]}


def test_the_seed_tests_exist_under_their_names():
    names = {c.name for c in checks.compile_all()}
    assert set(SEED_TESTS) <= names
    by_name = {c.name: c for c in checks.compile_all()}
    assert ("NOT IN ('investigational', 'combination_partner', 'active_comparator', "
            "'placebo_comparator', 'sham_comparator', 'other')"
            in by_name["accepted_values_mv_drug_trials_role"].sql)
    assert "drug_id || '-' || disease_id" in by_name["unique_mv_development_programs_drug_id_disease_id"].sql


def test_every_mart_has_not_null_keys_and_its_unique_key_checked():
    compiled = checks.compile_all()
    for mart in definitions.marts().values():
        tests = {(c.test, c.sql) for c in compiled if c.mart == mart.name}
        for column in mart.latest.unique_key:
            assert any(t == "not_null" and f"WHERE {column} IS NULL" in s for t, s in tests), (mart.name, column)
        assert any(t == "unique" for t, _ in tests), mart.name


def test_all_checks_pass_on_freshly_refreshed_data(dsn, cli, tmp_path):
    result, by_name = check_results(cli, dsn, tmp_path)
    assert result.returncode == 0, result.stdout
    assert len(by_name) == len(checks.compile_all())
    blocking = [n for n, r in by_name.items() if r["blocks"]]
    assert blocking == []
    assert {r["status"] for r in by_name.values()} <= {"pass", "warn"}
    assert "Done. PASS=" in result.stdout


def test_orphan_drug_after_a_source_delete_without_refresh(dsn, cli, sql, tmp_path):
    drug_id, programs = sql("SELECT drug_id, count(*) FROM mv_development_programs GROUP BY 1"
                            " HAVING count(*) > 1 ORDER BY 2 DESC, 1 LIMIT 1")[0]
    sql("DELETE FROM drugs WHERE id = %s", (drug_id,))
    result, by_name = check_results(cli, dsn, tmp_path, "--select", "mv_development_programs")
    assert result.returncode == 1
    orphan = by_name["assert_mv_dev_programs_no_orphans"]
    assert (orphan["status"], orphan["failures"]) == ("fail", programs)
    rel = by_name["relationships_mv_development_programs_drug_id__id__drugs"]
    assert (rel["status"], rel["failures"]) == ("fail", programs)   # orphan child rows
    assert {row["drug_id"] for row in orphan["sample"]} == {drug_id}
    assert "FAIL assert_mv_dev_programs_no_orphans" in result.stdout


@pytest.fixture
def crafted_drug_trials(sql, dsn):
    """Replace mv_drug_trials by a hand-made one with bad rows (as a broken SQL version would):
    3 NULL drug ids, 2 keys duplicated (one twice, one three times), roles 'bogus' x3 and
    'weird' x1, and one NULL role."""
    sql("DROP MATERIALIZED VIEW public.mv_drug_trials CASCADE")  # its check views with it
    sql("""CREATE MATERIALIZED VIEW public.mv_drug_trials AS
        WITH good AS (SELECT 1::bigint AS drug_id, 10::bigint AS clinical_trial_id, 'other'::text AS role)
        SELECT * FROM good
        UNION ALL SELECT NULL, 11, 'other' UNION ALL SELECT NULL, 12, 'other' UNION ALL SELECT NULL, 13, 'other'
        UNION ALL SELECT 2, 20, 'investigational' UNION ALL SELECT 2, 20, 'investigational'
        UNION ALL SELECT 3, 30, 'other' UNION ALL SELECT 3, 30, 'other' UNION ALL SELECT 3, 30, 'other'
        UNION ALL SELECT 4, 40, 'bogus' UNION ALL SELECT 5, 41, 'bogus' UNION ALL SELECT 6, 42, 'bogus'
        UNION ALL SELECT 7, 43, 'weird' UNION ALL SELECT 8, 44, NULL""")
    reinstall_checks(dsn, "mv_drug_trials")


def test_generic_checks_count_failures_like_dbt(crafted_drug_trials, dsn, cli, tmp_path, sql):
    result, by_name = check_results(cli, dsn, tmp_path, "--select", "mv_drug_trials")
    assert result.returncode == 1
    expected = {
        "not_null_mv_drug_trials_drug_id": 3,         # NULL rows
        "not_null_mv_drug_trials_role": 1,
        "accepted_values_mv_drug_trials_role": 2,      # distinct invalid values, NULL ignored
        "unique_mv_drug_trials_drug_id_clinical_trial_id_role": 2,  # duplicated values
    }
    for name, count in expected.items():
        assert (by_name[name]["status"], by_name[name]["failures"]) == ("fail", count), name
    # Samples show the offending rows, at most 5.
    bad_roles = {row["value_field"] for row in by_name["accepted_values_mv_drug_trials_role"]["sample"]}
    assert bad_roles == {"bogus", "weird"}
    assert "FAIL accepted_values_mv_drug_trials_role" in result.stdout
    # The counts are those of dbt's own generic test SQL on the same data.
    dbt_unique = sql("""select count(*) from (
        select drug_id || '-' || clinical_trial_id || '-' || role as unique_field, count(*) as n_records
        from public.mv_drug_trials where drug_id || '-' || clinical_trial_id || '-' || role is not null
        group by drug_id || '-' || clinical_trial_id || '-' || role having count(*) > 1) dbt_internal_test""")[0][0]
    dbt_accepted = sql("""select count(*) from (
        with all_values as (select role as value_field, count(*) as n_records
                            from public.mv_drug_trials group by role)
        select * from all_values where value_field not in
        ('investigational','combination_partner','active_comparator','placebo_comparator',
         'sham_comparator','other')) dbt_internal_test""")[0][0]
    assert dbt_unique == by_name["unique_mv_drug_trials_drug_id_clinical_trial_id_role"]["failures"]
    assert dbt_accepted == by_name["accepted_values_mv_drug_trials_role"]["failures"]


def test_relationships_counts_orphan_child_rows_ignoring_null(dsn, cli, sql, tmp_path):
    trial = sql("SELECT clinical_trial_id, count(*) FROM mv_drug_trials WHERE drug_id IS NOT NULL"
                " GROUP BY 1 HAVING count(*) > 1 ORDER BY 2 DESC LIMIT 1")[0]
    sql("DELETE FROM clinical_trials WHERE id = %s", (trial[0],))
    _, by_name = check_results(cli, dsn, tmp_path, "--select", "mv_drug_trials")
    rel = by_name["relationships_mv_drug_trials_clinical_trial_id__id__clinical_trials"]
    assert (rel["status"], rel["failures"]) == ("fail", trial[1])


def test_a_check_that_cannot_run_is_an_error_not_a_pass(dsn, cli, sql, tmp_path):
    sql("REFRESH MATERIALIZED VIEW public.mv_drug_pipeline WITH NO DATA")
    result, by_name = check_results(cli, dsn, tmp_path, "--select", "mv_drug_pipeline")
    assert result.returncode == 1
    pipeline = [r for r in by_name.values() if r["mart"] == "mv_drug_pipeline"]
    assert pipeline and all(r["status"] == "error" for r in pipeline)
    assert all("has not been populated" in r["error"] for r in pipeline)
    assert "ERROR not_null_mv_drug_pipeline_drug_id" in result.stdout


def test_warn_severity_reports_without_failing(dsn, cli, sql, tmp_path):
    sql("UPDATE clinical_trials SET phase = 'phase9' WHERE id IN (SELECT clinical_trial_id"
        " FROM trial_diseases LIMIT 20) AND overall_status IS DISTINCT FROM 'withdrawn'")
    sql("REFRESH MATERIALIZED VIEW public.mv_efficacy_evidence")
    result, by_name = check_results(cli, dsn, tmp_path, "--select", "mv_efficacy_evidence")
    phase = by_name["accepted_values_mv_efficacy_evidence_trial_phase"]
    assert phase["severity"] == "warn" and phase["status"] == "warn" and phase["failures"] >= 1
    assert result.returncode == 0


def _plugin_outcomes(dsn, tmp_path) -> dict[str, str]:
    xml = tmp_path / "junit.xml"
    result = run_cli("--pyargs", "bioloupe_views.data_checks", f"--bioloupe-dsn={dsn}",
                     f"--junitxml={xml}", "-p", "no:cacheprovider", "-q",
                     executable="pytest")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    outcomes = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = case.get("name").split("[", 1)[1].rstrip("]")
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[name] = "failed" if failed else "passed"
    return outcomes


def test_the_pytest_plugin_agrees_with_the_check_command(crafted_drug_trials, dsn, cli, sql, tmp_path):
    sql("DELETE FROM drugs WHERE id = (SELECT min(drug_id) FROM mv_development_programs)")
    result, by_name = check_results(cli, dsn, tmp_path)
    plugin = _plugin_outcomes(dsn, tmp_path)
    assert set(plugin) == set(by_name)
    expected = {n: "failed" if (r["blocks"] or r["status"] == "error") else "passed"
                for n, r in by_name.items()}
    assert plugin == expected
    assert "failed" in plugin.values() and "passed" in plugin.values()


def _pairs_missing(sql, left: str, right: str, trial_results_only: bool = False) -> set[tuple]:
    """(drug_id, disease_id) pairs of mart `left` that mart `right` lacks, by an anti-join: a
    second formulation to hold the checks' EXCEPT against."""
    query = pgsql.SQL(
        "SELECT DISTINCT l.drug_id, l.disease_id FROM {left} l WHERE {only}"
        " AND NOT EXISTS (SELECT 1 FROM {right} r"
        " WHERE r.drug_id = l.drug_id AND r.disease_id = l.disease_id)").format(
        left=pgsql.Identifier("public", left), right=pgsql.Identifier("public", right),
        only=pgsql.SQL("l.source_type = 'trial_arm_result'" if trial_results_only else "TRUE"))
    return set(sql(query))


def test_landscape_must_have_exactly_the_programs_pairs(dsn, cli, sql, tmp_path):
    # Pairs leave the programs (their trials lose their diseases) and others arrive (a trial
    # gains a disease), and only mv_development_programs is refreshed.
    sql("DELETE FROM trial_diseases WHERE clinical_trial_id IN"
        " (SELECT clinical_trial_id FROM trial_diseases ORDER BY id LIMIT 40)")
    sql("INSERT INTO trial_diseases (id, clinical_trial_id, disease_id)"
        " SELECT (SELECT max(id) FROM trial_diseases) + 1, dt.clinical_trial_id,"
        "        (SELECT min(dis.id) FROM diseases dis WHERE NOT EXISTS (SELECT 1"
        "         FROM mv_development_programs p WHERE (p.drug_id, p.disease_id) = (dt.drug_id, dis.id)))"
        " FROM mv_drug_trials dt JOIN drugs d ON d.id = dt.drug_id"
        " JOIN clinical_trials ct ON ct.id = dt.clinical_trial_id"
        " WHERE ct.overall_status <> 'withdrawn' ORDER BY dt.clinical_trial_id DESC LIMIT 1")
    sql("REFRESH MATERIALIZED VIEW public.mv_development_programs")
    gone = _pairs_missing(sql, "mv_competitive_landscape", "mv_development_programs")
    new = _pairs_missing(sql, "mv_development_programs", "mv_competitive_landscape")
    assert gone and new
    result, by_name = check_results(cli, dsn, tmp_path, "--select", "mv_competitive_landscape")
    check = by_name["assert_mv_competitive_landscape_matches_programs"]
    assert (check["status"], check["failures"]) == ("fail", len(gone) + len(new))
    assert result.returncode == 1
    for row in check["sample"]:
        pair = (row["drug_id"], row["disease_id"])
        assert pair in (gone if row["problem"] == "not_in_programs" else new), row


def test_efficacy_pairs_outside_the_programs_warn(dsn, cli, sql, tmp_path):
    sql("DELETE FROM trial_diseases WHERE clinical_trial_id IN (SELECT clinical_trial_id"
        " FROM mv_efficacy_evidence WHERE source_type = 'trial_arm_result' ORDER BY 1 LIMIT 30)")
    sql("REFRESH MATERIALIZED VIEW public.mv_development_programs")
    missing = _pairs_missing(sql, "mv_efficacy_evidence", "mv_development_programs",
                             trial_results_only=True)
    assert missing
    result, by_name = check_results(cli, dsn, tmp_path, "--select", "mv_efficacy_evidence")
    check = by_name["assert_mv_efficacy_evidence_trial_pairs_in_programs"]
    assert (check["severity"], check["status"], check["failures"]) == ("warn", "warn", len(missing))
    assert {(r["drug_id"], r["disease_id"]) for r in check["sample"]} <= missing
    assert result.returncode == 0
