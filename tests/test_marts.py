"""Issue 2: the marts are created by `alembic upgrade head`, populated, indexed, and return
exactly the rows of the seed's SQL (tests/reference/), before and after source changes."""

from __future__ import annotations


import psycopg2

from bioloupe_views import contract, definitions
from bioloupe_views.dev import synthetic

from tests.conftest import MARTS, assert_equal_to_seed




def test_upgrade_creates_five_populated_marts_with_their_indexes(sql):
    marts = sql("SELECT matviewname, ispopulated FROM pg_matviews WHERE schemaname = 'public'"
                " ORDER BY 1")
    assert marts == [(m, True) for m in sorted(MARTS)]
    for mart in definitions.marts().values():
        rows = sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
                   " AND tablename = %s", (mart.name,))
        found = {name: definition for name, definition in rows}
        for index in mart.latest.indexes:
            assert index.name in found, f"{mart.name} lacks {index.name}"
            cols = ", ".join(index.columns)
            assert found[index.name].endswith(f"({cols})")
            assert ("UNIQUE" in found[index.name]) == index.unique
        assert sql(f"SELECT count(*) FROM public.{mart.name}")[0][0] > 0


def test_marts_match_the_seed_sql_row_for_row(dsn):
    conn = psycopg2.connect(dsn)
    try:
        assert_equal_to_seed(conn)
    finally:
        conn.close()


def test_marts_match_after_source_changes_and_a_refresh(dsn, cli):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT md5(string_agg(t::text, '' ORDER BY t::text)) FROM public.mv_development_programs t")
            fingerprint_before = cur.fetchone()[0]
        synthetic.mutate(conn)
        result = cli("refresh", dsn=dsn)
        assert result.returncode == 0, result.stdout + result.stderr
        with conn.cursor() as cur:
            cur.execute("SELECT md5(string_agg(t::text, '' ORDER BY t::text)) FROM public.mv_development_programs t")
            assert cur.fetchone()[0] != fingerprint_before, "the mutation changed nothing"
        assert_equal_to_seed(conn)
    finally:
        conn.close()


def test_test_data_has_every_edge_case_of_the_contract(sql):
    """The correctness proof is only as good as its data."""
    facts = {
        "intervention without a drug": "SELECT count(*) FROM interventions WHERE drug_id IS NULL",
        "intervention with a dangling drug": "SELECT count(*) FROM interventions i WHERE drug_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM drugs d WHERE d.id = i.drug_id)",
        "trial without diseases": "SELECT count(*) FROM clinical_trials ct WHERE NOT EXISTS (SELECT 1 FROM trial_diseases td WHERE td.clinical_trial_id = ct.id)",
        "publication with a dangling trial": "SELECT count(*) FROM publications p WHERE clinical_trial_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM clinical_trials c WHERE c.id = p.clinical_trial_id)",
        "duplicate ownership": "SELECT count(*) FROM (SELECT drug_id, organisation_id FROM drug_ownerships GROUP BY 1, 2 HAVING count(*) > 1) x",
        "same disease twice for one approval": "SELECT count(*) FROM (SELECT drug_approval_id, disease_id FROM indications GROUP BY 1, 2 HAVING count(*) > 1) x",
        "withdrawn trial": "SELECT count(*) FROM clinical_trials WHERE overall_status = 'withdrawn'",
        "trial with NULL status": "SELECT count(*) FROM clinical_trials WHERE overall_status IS NULL",
        "phase tie at rank 3": "SELECT count(*) FROM mv_development_programs dp WHERE highest_phase_rank = 3 AND EXISTS (SELECT 1 FROM trial_arm_interventions tai JOIN interventions i ON i.id = tai.intervention_id JOIN trial_arms ta ON ta.id = tai.trial_arm_id JOIN clinical_trials ct ON ct.id = ta.clinical_trial_id JOIN trial_diseases td ON td.clinical_trial_id = ct.id WHERE i.drug_id = dp.drug_id AND td.disease_id = dp.disease_id AND ct.phase = 'phase2_3' AND ct.overall_status <> 'withdrawn') AND EXISTS (SELECT 1 FROM trial_arm_interventions tai JOIN interventions i ON i.id = tai.intervention_id JOIN trial_arms ta ON ta.id = tai.trial_arm_id JOIN clinical_trials ct ON ct.id = ta.clinical_trial_id JOIN trial_diseases td ON td.clinical_trial_id = ct.id WHERE i.drug_id = dp.drug_id AND td.disease_id = dp.disease_id AND ct.phase = 'phase3' AND ct.overall_status <> 'withdrawn')",
        "non-unique disease names": "SELECT count(*) FROM (SELECT name FROM diseases GROUP BY 1 HAVING count(*) > 1) x",
        "NULL nct_id": "SELECT count(*) FROM clinical_trials WHERE nct_id IS NULL",
        "NULL is_investigational": "SELECT count(*) FROM trial_arm_interventions WHERE is_investigational IS NULL",
        "outcome without drug": "SELECT count(*) FROM publication_outcomes WHERE drug_id IS NULL",
        "drug trials with a drug id that has no drug": "SELECT count(*) FROM mv_drug_trials t WHERE NOT EXISTS (SELECT 1 FROM drugs d WHERE d.id = t.drug_id)",
    }
    for column_fact, query in facts.items():
        assert sql(query)[0][0] > 0, f"test data lacks: {column_fact}"
    for table, columns in contract.tables().items():
        for column, decl in columns.items():
            if "not null" not in decl and "primary key" not in decl:
                nulls = sql(f'SELECT count(*) FROM {table} WHERE "{column}" IS NULL')[0][0]
                assert nulls > 0, f"{table}.{column} is never NULL in the test data"


def test_missing_sources_stop_the_migration_with_one_message_and_create_nothing(sources_dsn, cli):
    conn = psycopg2.connect(sources_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP TABLE publication_outcomes")
        cur.execute("ALTER TABLE drugs DROP COLUMN drug_status")
    result = cli("-x", f"dsn={sources_dsn}", "upgrade", "head", executable="alembic")
    output = result.stdout + result.stderr  # alembic prints "FAILED: ..." on stdout
    assert result.returncode != 0
    assert "missing tables: publication_outcomes" in output
    assert "missing columns: drugs.drug_status" in output
    assert "Traceback" not in output
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_matviews")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'bioloupe_views'")
        assert cur.fetchone()[0] == 0
    conn.close()


def test_upgrade_downgrade_upgrade_on_populated_data_touches_no_source(sources_dsn, cli):
    conn = psycopg2.connect(sources_dsn)
    conn.autocommit = True

    def source_fingerprint():
        with conn.cursor() as cur:
            counts = []
            for table in contract.tables():
                cur.execute(f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t.id)) FROM {table} t")
                counts.append(cur.fetchone())
            return counts

    def ours():
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM pg_matviews), (SELECT count(*) FROM"
                        " pg_namespace WHERE nspname = 'bioloupe_views')")
            return cur.fetchone()

    before = source_fingerprint()
    env = {"BIOLOUPE_DATABASE_URL": sources_dsn}
    for step, expected in ((("upgrade", "head"), (5, 1)), (("downgrade", "base"), (0, 0)),
                           (("upgrade", "head"), (5, 1))):
        result = cli(*step, env=env, executable="alembic")
        assert result.returncode == 0, result.stderr
        assert ours() == expected, step
    assert source_fingerprint() == before
    conn.close()


def test_alembic_reports_an_unreachable_database_in_one_line(cli):
    result = cli("-x", "dsn=postgresql://u:s3cret@127.0.0.1:1/db", "upgrade", "head",
                 executable="alembic")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "cannot reach PostgreSQL" in output
    assert "s3cret" not in output
    assert "Traceback" not in output
