"""Checks that cost less with the same results: column checks counted in one scan of the
mart, and unique checks that the mart's unique index implies."""

from __future__ import annotations

import json

import psycopg2
import pytest
from psycopg2 import sql as pgsql

from bioloupe_views import checks, definitions, fast_checks
from tests.test_checks import check_results, crafted_drug_trials  # noqa: F401 (fixture)

IMPLIED = {  # the seed's unique checks on concatenated keys, and the index that implies each
    "unique_mv_development_programs_drug_id_disease_id": "mv_development_programs_key",
    "unique_mv_competitive_landscape_drug_id_disease_id": "mv_competitive_landscape_key",
    "unique_mv_drug_pipeline_drug_id": "mv_drug_pipeline_key",
    "unique_mv_drug_trials_drug_id_clinical_trial_id_role": "mv_drug_trials_key",
}


def _run_checks(sql, mart):
    return {r[0]["name"]: r[0] for r in sql(
        "SELECT to_jsonb(r) FROM bioloupe_views.run_checks(%s) r", (mart,))}


def test_unique_checks_the_key_implies_pass_by_the_index_and_run_without_it(sql):
    results = {}
    for mart in definitions.marts():
        results.update(_run_checks(sql, mart))
    for name, index in IMPLIED.items():
        assert (results[name]["status"], results[name]["failures"]) == ("pass", 0), name
        assert results[name]["note"] == f"implied by unique index {index}", name
    # Text first: '-' in a source_type could make two keys one text, so it really runs.
    efficacy = [r for n, r in results.items() if n.startswith("unique_mv_efficacy_evidence")]
    assert efficacy and all(r["note"] is None and r["status"] == "pass" for r in efficacy)
    # Without the index the check reads its view again (and still passes on good data).
    sql("DROP INDEX public.mv_development_programs_key")
    again = _run_checks(sql, "mv_development_programs")
    name = "unique_mv_development_programs_drug_id_disease_id"
    assert (again[name]["status"], again[name]["failures"], again[name]["note"]) == ("pass", 0, None)


def test_an_index_on_more_columns_than_the_check_implies_nothing(sql, dsn):
    # drug_id alone is not made unique by a key on (drug_id, disease_id).
    version = definitions.get("mv_development_programs").latest
    check = checks.Check("unique_programs_drug", "mv_development_programs", "unique",
                         "warn", "", column="drug_id")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        assert fast_checks.implication(cur, version, check) is None
        key = checks.Check("k", "mv_development_programs", "unique", "warn", "",
                           column="disease_id || '-' || drug_id")
        assert fast_checks.implication(cur, version, key).index == "mv_development_programs_key"


@pytest.mark.parametrize("expression, parsed", [
    ("drug_id", (("drug_id",), False)),
    ("drug_id || '-' || disease_id", (("drug_id", "disease_id"), True)),
    ("a || ' / ' || b || '-' || c", (("a", "b", "c"), True)),
    ("drug_id || disease_id", None),             # '12' || '3' = '1' || '23'
    ("drug_id || '1' || disease_id", None),      # a separator that starts with a digit
    ("drug_id || '' || disease_id", None),
    ("lower(name)", None),
    ("drug_id || '-'", None),
])
def test_which_unique_expressions_read_back_one_way(expression, parsed):
    assert fast_checks._unique_columns(expression) == parsed


def test_column_checks_are_counted_in_one_scan_with_dbts_counts(crafted_drug_trials, dsn, cli,
                                                                sql, tmp_path):
    batched = sql("SELECT name, relation, batch_relation, batch_column FROM bioloupe_views.mart_check"
                  " WHERE mart = 'mv_drug_trials' AND batch_relation IS NOT NULL ORDER BY position")
    assert {n for n, *_ in batched} >= {"not_null_mv_drug_trials_drug_id",
                                        "not_null_mv_drug_trials_role",
                                        "accepted_values_mv_drug_trials_role"}
    counts = {}
    for name, relation, batch, column in batched:
        own = sql(pgsql.SQL("SELECT count(*) FROM {}").format(
            pgsql.Identifier("bioloupe_views_checks", relation)))[0][0]
        together = sql(pgsql.SQL("SELECT {} FROM {}").format(
            pgsql.Identifier(column), pgsql.Identifier("bioloupe_views_checks", batch)))[0][0]
        assert together == own, name
        counts[name] = own
    assert counts["not_null_mv_drug_trials_drug_id"] == 3
    assert counts["accepted_values_mv_drug_trials_role"] == 2
    # The check command reports the same counts, with the offending rows as samples.
    _, by_name = check_results(cli, dsn, tmp_path, "--select", "mv_drug_trials")
    for name, count in counts.items():
        assert by_name[name]["failures"] == count, name
        assert (by_name[name]["sample"] == []) == (count == 0), name


def test_passing_column_checks_do_not_read_their_own_views(sql):
    results = _run_checks(sql, "mv_development_programs")
    batched = {n for (n,) in sql("SELECT name FROM bioloupe_views.mart_check"
                                 " WHERE mart = 'mv_development_programs'"
                                 " AND batch_relation IS NOT NULL")}
    assert len(batched) >= 5
    for name in batched:
        if results[name]["status"] == "pass":
            assert results[name]["note"] == "counted in one scan with the other column checks"
    stats = json.dumps(results)
    assert "error" not in {r["status"] for r in results.values()}, stats
