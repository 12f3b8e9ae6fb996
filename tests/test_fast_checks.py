"""Checks that cost less with the same results: column checks counted in one scan of the
mart, and unique checks that the mart's unique index implies."""

from __future__ import annotations

import json

import psycopg2
import pytest
from psycopg2 import sql as pgsql

from bioloupe_views import checks, definitions, fast_checks
from tests.conftest import reinstall_checks
from tests.test_checks import check_results, crafted_drug_trials  # noqa: F401 (fixture)

IMPLIED = {  # the seed's unique checks on concatenated keys, and the index that implies each
    "unique_mv_development_programs_drug_id_disease_id": "mv_development_programs_key",
    "unique_mv_competitive_landscape_drug_id_disease_id": "mv_competitive_landscape_key",
    "unique_mv_drug_pipeline_drug_id": "mv_drug_pipeline_key",
    "unique_mv_drug_trials_drug_id_clinical_trial_id_role": "mv_drug_trials_key",
    # text first: implied while no source_type holds a '-' (the guard counts 0)
    "unique_mv_efficacy_evidence_source_type_evidence_id_drug_id_disease_id": "mv_efficacy_evidence_key",
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


@pytest.fixture
def crafted_efficacy_keys(sql, dsn):
    """mv_efficacy_evidence by hand, with its unique key: ('a-', 1, 2, 3) and ('a', -1, 2, 3)
    are two keys that read the same as text ('a--1-2-3'), and ('b-', 5, 6, 7) has a '-'
    but no twin."""
    sql("CREATE TABLE crafted AS SELECT * FROM public.mv_efficacy_evidence LIMIT 3")
    sql("""UPDATE crafted c SET (source_type, evidence_id, drug_id, disease_id) = (k.t, k.e, 2, 3)
           FROM (SELECT ctid AS id, row_number() OVER () AS n FROM crafted) r,
                (VALUES (1, 'a-', 1), (2, 'a', -1), (3, 'b-', 5)) k(n, t, e)
           WHERE r.id = c.ctid AND r.n = k.n""")
    sql("DROP MATERIALIZED VIEW public.mv_efficacy_evidence CASCADE")
    sql("CREATE MATERIALIZED VIEW public.mv_efficacy_evidence AS SELECT * FROM crafted")
    sql("CREATE UNIQUE INDEX mv_efficacy_evidence_key ON public.mv_efficacy_evidence"
        " (source_type, evidence_id, drug_id, disease_id)")
    reinstall_checks(dsn, "mv_efficacy_evidence")


def test_a_key_that_reads_two_ways_as_text_is_checked_for_real(crafted_efficacy_keys, sql):
    name = "unique_mv_efficacy_evidence_source_type_evidence_id_drug_id_disease_id"
    guard = sql("SELECT implied_by, implied_guard_relation FROM bioloupe_views.mart_check"
                " WHERE name = %s", (name,))
    assert guard == [("mv_efficacy_evidence_key", "mv_efficacy_evidence__column_checks")]
    result = _run_checks(sql, "mv_efficacy_evidence")[name]
    # dbt counts each duplicated value once: here the one text 'a--1-2-3'
    assert (result["status"], result["failures"], result["note"]) == ("fail", 1, None)
    assert result["sample"][0]["unique_field"] == "a--1-2-3"
    # With the twin gone, the '-' left still makes it run (and pass), never "implied".
    sql("DELETE FROM crafted WHERE source_type = 'a'")
    sql("REFRESH MATERIALIZED VIEW public.mv_efficacy_evidence")
    result = _run_checks(sql, "mv_efficacy_evidence")[name]
    assert (result["status"], result["failures"], result["note"]) == ("pass", 0, None)
    sql("DELETE FROM crafted WHERE strpos(source_type, '-') > 0")
    sql("REFRESH MATERIALIZED VIEW public.mv_efficacy_evidence")
    result = _run_checks(sql, "mv_efficacy_evidence")[name]
    assert result["note"] == "implied by unique index mv_efficacy_evidence_key"


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
