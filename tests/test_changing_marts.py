"""Issue 6: changing a mart. op.replace_materialized_view takes mv_development_programs from
v1 to v2 and back, through real Alembic migrations on populated data, and every view on top
of it (the two dependent marts, an unmanaged materialized view in another schema, plain
views) is rebuilt with the right rows, its indexes, grants and comments; side by side, a
reader loop keeps running and is blocked only for the swap; `diff` finds hand-made changes;
`new-version` scaffolds the next version.

The v2 used here is never added to the package: each test works on a temporary copy of the
SQL files, alembic.ini and migrations/ (the `project` fixture), so nothing is left behind.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

import psycopg2
import pytest
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from click.testing import CliRunner
from sqlalchemy import create_engine, pool

from bioloupe_views import definitions, migrate
from bioloupe_views import mart_graph as graph
from bioloupe_views import cli
from bioloupe_views.commands import diff as drift

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_SQL = definitions.SQL_DIR
ROOT_MART = "mv_development_programs"
DEPENDENT_MARTS = ["mv_competitive_landscape", "mv_drug_pipeline"]
READER = "bv_test_mart_reader"

# Views this project does not manage, on top of a dependent mart: their own SQL, by name.
UNMANAGED = {
    "reporting.mv_programs_by_disease": (
        "SELECT disease_id, count(*) AS programs, max(highest_phase_rank) AS best_rank"
        " FROM public.mv_competitive_landscape GROUP BY disease_id"),
    "public.v_landscape_late": (
        "SELECT drug_id, disease_id, technology_name FROM public.mv_competitive_landscape"
        " WHERE highest_phase_rank >= 3"),
    "public.v_disease_summary": (
        "SELECT disease_id, programs FROM reporting.mv_programs_by_disease WHERE programs > 1"),
}


# -- a temporary project: SQL files, alembic.ini and migrations ---------------------------

@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(PACKAGE_SQL, root / "sql")
    shutil.copytree(ROOT / "migrations", root / "migrations",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(migrate.ALEMBIC_INI, root / "alembic.ini")
    monkeypatch.setattr(definitions, "SQL_DIR", root / "sql")
    monkeypatch.setattr(migrate, "ALEMBIC_INI", root / "alembic.ini")
    definitions.marts.cache_clear()
    yield root
    definitions.marts.cache_clear()


def write_v2(project: Path, slow: bool = False, whole: bool = False) -> None:
    """v2 of mv_development_programs: v1 plus a column (nct_count). `slow` makes the build
    take at least a second, so a reader loop has time to run during it. `whole` also gives
    v2 what a real new version has: an index on the new column and a check of its own."""
    v1_dir, v2_dir = project / "sql" / ROOT_MART / "v1", project / "sql" / ROOT_MART / "v2"
    shutil.copytree(v1_dir, v2_dir)
    v1 = (v1_dir / "query.sql").read_text()
    sleep = " CROSS JOIN (SELECT pg_sleep(1)) AS slow_build" if slow else ""
    (v2_dir / "query.sql").write_text(
        "-- test v2: v1 plus the number of trials\n"
        f"SELECT v1.*, cardinality(v1.nct_ids) AS nct_count FROM (\n{v1}\n) AS v1{sleep}\n")
    if whole:
        spec = (v2_dir / "mart.toml").read_text().replace(
            'indexes = [["highest_phase_rank"]', 'indexes = [["nct_count"], ["highest_phase_rank"]')
        spec += '\n[[checks]]\ntest = "not_null"\ncolumn = "nct_count"\nseverity = "warn"\n'
        (v2_dir / "mart.toml").write_text(spec)


def add_migration(project: Path, upgrade: str, downgrade: str) -> str:
    """A migration file after the current head, in the temporary project."""
    script = ScriptDirectory.from_config(Config(str(project / "alembic.ini")))
    head = script.get_current_head()
    revision = "t6_dp_v2"
    (project / "migrations" / "versions" / f"{revision}.py").write_text(
        f'"""test: {ROOT_MART} v2"""\n'
        "from alembic import op\n\n"
        f"revision = {revision!r}\ndown_revision = {head!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n    {upgrade}\n\n\n"
        f"def downgrade():\n    {downgrade}\n")
    return revision


def run_op(dsn: str, **kwargs):
    """op.replace_materialized_view through Alembic's Operations, in one transaction."""
    engine = create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(dsn),
                           poolclass=pool.NullPool)
    with engine.connect() as conn, conn.begin():
        return Operations(MigrationContext.configure(conn)).replace_materialized_view(**kwargs)


# -- the database around the mart ---------------------------------------------------------

def add_surroundings(sql) -> None:
    """A reader role with grants, comments, and unmanaged views on top of a dependent."""
    sql(f"DO $$ BEGIN CREATE ROLE {READER} NOLOGIN; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    sql(f"GRANT SELECT ON {ROOT_MART}, mv_competitive_landscape TO {READER}")
    sql(f"COMMENT ON COLUMN {ROOT_MART}.highest_phase IS 'the phase label'")
    sql("COMMENT ON COLUMN mv_competitive_landscape.technology_name IS 'from technologies'")
    sql("CREATE SCHEMA reporting")
    sql("GRANT USAGE ON SCHEMA reporting TO " + READER)
    name = "reporting.mv_programs_by_disease"
    sql(f"CREATE MATERIALIZED VIEW {name} AS {UNMANAGED[name]}")
    sql(f"CREATE UNIQUE INDEX mv_programs_by_disease_key ON {name} (disease_id)")
    sql(f"CREATE INDEX mv_programs_by_disease_rank ON {name} (best_rank DESC)")
    sql(f"COMMENT ON MATERIALIZED VIEW {name} IS 'programs per disease'")
    sql("COMMENT ON INDEX reporting.mv_programs_by_disease_rank IS 'for the league table'")
    sql(f"GRANT SELECT (disease_id, programs) ON {name} TO {READER}")
    sql(f"CREATE VIEW public.v_landscape_late WITH (security_barrier = true) AS "
        f"{UNMANAGED['public.v_landscape_late']}")
    sql(f"GRANT SELECT ON public.v_landscape_late TO {READER}")
    sql("COMMENT ON VIEW public.v_landscape_late IS 'late-stage programs'")
    sql(f"CREATE VIEW public.v_disease_summary AS {UNMANAGED['public.v_disease_summary']}")
    sql(f"GRANT SELECT ON public.v_disease_summary TO {READER}")


def catalog_state(sql) -> dict:
    """Everything a replacement must keep, per view: kind, owner, options, grants, comments,
    indexes (with their comments)."""
    rows = sql("""
        SELECT c.oid::regclass::text, c.relkind, pg_get_userbyid(c.relowner), c.reloptions,
               c.relispopulated,
               (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(c.relacl) x),
               obj_description(c.oid, 'pg_class'),
               (SELECT array_agg(a.attname || ': ' || coalesce(col_description(c.oid, a.attnum), '')
                                 || ' ' || coalesce(a.attacl::text, '') ORDER BY a.attname)
                FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                  AND (col_description(c.oid, a.attnum) IS NOT NULL OR a.attacl IS NOT NULL)),
               (SELECT array_agg(pg_get_indexdef(i.indexrelid) || ' -- '
                                 || coalesce(obj_description(i.indexrelid, 'pg_class'), '')
                                 ORDER BY pg_get_indexdef(i.indexrelid))
                FROM pg_index i WHERE i.indrelid = c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('public', 'reporting') AND c.relkind IN ('m', 'v')
        ORDER BY 1""")
    return {row[0]: row[1:] for row in rows}


def mismatches(sql, relation: str, query: str) -> tuple[int, int, int]:
    """(rows only in `relation`, rows only in a fresh run of `query`, fresh rows)."""
    sql("DROP TABLE IF EXISTS pg_temp.fresh")
    sql(f"CREATE TEMP TABLE fresh AS {query}")
    return sql(f"SELECT (SELECT count(*) FROM (SELECT * FROM {relation} EXCEPT ALL"
               f" SELECT * FROM fresh) a), (SELECT count(*) FROM (SELECT * FROM fresh EXCEPT ALL"
               f" SELECT * FROM {relation}) b), (SELECT count(*) FROM fresh)")[0]


def assert_rows_right(sql, version: int, surroundings: bool = True) -> None:
    """The mart holds version `version`'s rows and every view above it holds exactly what
    its own SQL gives now (the unmanaged ones too, when the test added them)."""
    expected = {ROOT_MART: definitions.get(ROOT_MART).version(version).query}
    expected.update({m: definitions.get(m).version(1).query for m in DEPENDENT_MARTS})
    if surroundings:
        expected.update(UNMANAGED)
    for relation, query in expected.items():
        extra, missing, total = mismatches(sql, relation, query)
        assert (extra, missing) == (0, 0), f"{relation}: {extra} extra, {missing} missing rows"
        assert total > 0, f"{relation}: empty, the comparison proves nothing"
    columns = [r[0] for r in sql("SELECT attname FROM pg_attribute WHERE attrelid ="
                                 f" 'public.{ROOT_MART}'::regclass AND attnum > 0")]
    assert ("nct_count" in columns) == (version == 2)
    assert sql("SELECT version FROM bioloupe_views.mart WHERE name = %s",
               (ROOT_MART,)) == [(version,)]


def assert_reader_can_read(sql) -> None:
    sql(f"SET ROLE {READER}")
    try:
        for relation in [ROOT_MART, "mv_competitive_landscape", "public.v_landscape_late",
                         "public.v_disease_summary"]:
            assert sql(f"SELECT count(*) > 0 FROM {relation}") == [(True,)], relation
        assert sql("SELECT count(programs) > 0 FROM reporting.mv_programs_by_disease") == [(True,)]
    finally:
        sql("RESET ROLE")


def assert_no_drift(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    try:
        report = drift.compare(conn)
    finally:
        conn.close()
    assert not report.drifted, [(m.mart, m.problems) for m in report.drifted]


def refresh_order(dsn: str) -> list[str]:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        return graph.load(conn).order
    finally:
        conn.close()


def refresh_one(sql) -> tuple[str, str]:
    """Refresh the root mart through the engine (pg_cron's client); its status and mode."""
    sql(f"CALL bioloupe_views.refresh_all(ARRAY['{ROOT_MART}'])")
    return tuple(sql("SELECT status, mode FROM bioloupe_views.run_log WHERE mart = %s"
                     " ORDER BY id DESC LIMIT 1", (ROOT_MART,))[0])


def installed_checks(sql) -> dict[str, int]:
    return dict(sql("SELECT name, version FROM bioloupe_views.mart_check WHERE mart = %s",
                    (ROOT_MART,)))


# -- the tests ----------------------------------------------------------------------------

def test_a_version_is_whole_its_index_and_check_come_and_go_with_it(project, dsn, sql, cli):
    """v2 adds a column, an index on it and a check of it; the downgrade restores v1's
    query, indexes and checks, and each version refreshes and passes its own checks."""
    write_v2(project, whole=True)
    add_migration(project, f'op.replace_materialized_view("{ROOT_MART}", version=2)',
                  f'op.replace_materialized_view("{ROOT_MART}", version=1)')
    v1_checks = installed_checks(sql)
    assert v1_checks and set(v1_checks.values()) == {1}

    migrate.upgrade(dsn)
    assert sql("SELECT 1 FROM pg_indexes WHERE indexname = %s", (f"{ROOT_MART}__nct_count",))
    v2_checks = installed_checks(sql)
    assert set(v2_checks) == set(v1_checks) | {f"not_null_{ROOT_MART}_nct_count"}
    assert set(v2_checks.values()) == {2}
    assert refresh_one(sql) == ("success", "concurrent")
    check = cli("check", "--select", ROOT_MART, dsn=dsn)
    assert check.returncode == 0 and f"not_null_{ROOT_MART}_nct_count" in check.stdout
    assert_no_drift(dsn)

    migrate.downgrade(dsn, "-1")
    assert not sql("SELECT 1 FROM pg_indexes WHERE indexname = %s", (f"{ROOT_MART}__nct_count",))
    assert installed_checks(sql) == v1_checks
    assert refresh_one(sql) == ("success", "concurrent")
    check = cli("check", "--select", ROOT_MART, dsn=dsn)
    assert check.returncode == 0 and "nct_count" not in check.stdout
    assert_no_drift(dsn)


def test_v1_v2_downgrade_v1_keeps_dependents_indexes_grants_and_views(project, dsn, sql):
    write_v2(project)
    add_migration(project, f'op.replace_materialized_view("{ROOT_MART}", version=2)',
                  f'op.replace_materialized_view("{ROOT_MART}", version=1)')
    add_surroundings(sql)
    before = catalog_state(sql)
    order = refresh_order(dsn)
    assert_rows_right(sql, 1)

    migrate.upgrade(dsn)
    assert_rows_right(sql, 2)
    assert catalog_state(sql) == before
    assert_reader_can_read(sql)
    assert refresh_order(dsn) == order
    assert_no_drift(dsn)
    # The new version refreshes concurrently (its unique index is there) and passes its checks.
    assert refresh_one(sql) == ("success", "concurrent")

    migrate.downgrade(dsn, "-1")
    assert_rows_right(sql, 1)
    assert catalog_state(sql) == before
    assert_reader_can_read(sql)
    assert refresh_order(dsn) == order
    assert_no_drift(dsn)


@pytest.mark.parametrize("transaction", ["migration", "autocommit_block"])
def test_side_by_side_blocks_readers_only_for_the_swap(project, dsn, sql, caplog, transaction):
    write_v2(project, slow=True)
    call = f'op.replace_materialized_view("{ROOT_MART}", version=%d, side_by_side=True)'
    if transaction == "migration":
        add_migration(project, call % 2, call % 1)
    else:
        block = "with op.get_context().autocommit_block():\n        "
        add_migration(project, block + call % 2, block + call % 1)
    add_surroundings(sql)
    before = catalog_state(sql)
    caplog.set_level(logging.INFO, logger="bioloupe_views.replace")

    queries: list[tuple[float, float]] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader():
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                started = time.time()
                try:
                    cur.execute(f"SELECT count(*) FROM {ROOT_MART}")
                    cur.execute("SELECT count(*) FROM mv_competitive_landscape"
                                " WHERE highest_phase_rank >= 3")
                    cur.execute("SELECT count(*) FROM public.v_disease_summary")
                except psycopg2.Error as exc:
                    errors.append(str(exc).strip())
                queries.append((started, time.time()))
        conn.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        time.sleep(0.2)
        migrate.upgrade(dsn)
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()

    assert errors == []
    [record] = [r for r in caplog.records if hasattr(r, "bioloupe_replacement")]
    swap = record.bioloupe_replacement
    assert swap["mode"] == "side_by_side"
    assert swap["own_transactions"] == (transaction == "autocommit_block")
    assert swap["build_seconds"] >= 1.0  # v2's pg_sleep(1)
    # Readers went on reading the old version all through the build...
    during_build = [(start, end) for start, end in queries
                    if swap["started_at"] <= start and end <= swap["swap_started_at"]]
    assert len(during_build) >= 5, f"only {len(during_build)} reads completed during the build"
    # ...and the longest any reader waited is far below the build time.
    longest = max(end - start for start, end in queries)
    print(f"\nside-by-side ({transaction}): build {swap['build_seconds']:.3f}s, swap "
          f"{swap['swap_seconds'] * 1000:.1f}ms, longest reader wait {longest * 1000:.1f}ms, "
          f"{len(queries)} reader loops, {len(during_build)} during the build")
    assert longest < swap["build_seconds"] / 2
    assert_rows_right(sql, 2)
    assert catalog_state(sql) == before
    assert_reader_can_read(sql)
    assert sql("SELECT to_regnamespace('bioloupe_views_swap')") == [(None,)]

    migrate.downgrade(dsn, "-1")
    assert_rows_right(sql, 1)
    assert catalog_state(sql) == before
    assert_no_drift(dsn)


def test_replace_waits_for_locks_briefly_and_gives_up_cleanly(project, dsn, sql):
    """A long reader holds the mart: the operation retries with a short lock_timeout, then
    fails with a message, leaving everything as it was."""
    write_v2(project)
    holder = psycopg2.connect(dsn)
    try:
        with holder.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {ROOT_MART}")  # AccessShareLock until rollback
        started = time.perf_counter()
        with pytest.raises(CommandError, match="could not lock mv_development_programs"):
            run_op(dsn, name=ROOT_MART, version=2, side_by_side=True,
                   lock_timeout="100ms", lock_retries=2)
        assert time.perf_counter() - started < 10
    finally:
        holder.rollback()
        holder.close()
    assert_rows_right(sql, 1, surroundings=False)
    result = run_op(dsn, name=ROOT_MART, version=2, side_by_side=True)
    assert (result.from_version, result.to_version, result.lock_attempts) == (1, 2, 1)
    # The marts above it, and the check views of marts that read it, are rebuilt.
    marts = [d for d in result.dependents if not d.startswith("bioloupe_views_checks.")]
    assert marts == [f"public.{m}" for m in DEPENDENT_MARTS]
    assert ("bioloupe_views_checks.assert_mv_competitive_landscape_matches_programs"
            in result.dependents)
    assert_rows_right(sql, 2, surroundings=False)
    assert_no_drift(dsn)


def test_replace_refuses_when_something_other_than_a_view_depends(project, dsn, sql):
    write_v2(project)
    sql("CREATE FUNCTION public.program_count() RETURNS bigint LANGUAGE sql"
        f" BEGIN ATOMIC SELECT count(*) FROM public.{ROOT_MART}; END")
    with pytest.raises(CommandError, match=r"objects other than views depend on it.*program_count"):
        run_op(dsn, name=ROOT_MART, version=2)
    assert_rows_right(sql, 1, surroundings=False)
    with pytest.raises(CommandError, match="has no version 3"):
        run_op(dsn, name=ROOT_MART, version=3)


def test_diff_finds_hand_made_changes(dsn, sql, cli):
    clean = cli("diff", dsn=dsn)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No drift: 5 marts" in clean.stdout

    sql("DROP INDEX mv_drug_trials__drug_id")
    sql("CREATE INDEX mv_efficacy_evidence_by_nct ON mv_efficacy_evidence (nct_id)")
    found = cli("diff", dsn=dsn)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "mv_drug_trials (v1): DRIFT" in found.stdout
    assert "missing index mv_drug_trials__drug_id (drug_id)" in found.stdout
    assert "extra index mv_efficacy_evidence_by_nct" in found.stdout
    assert "mv_development_programs (v1): ok" in found.stdout

    sql("CREATE INDEX mv_drug_trials__drug_id ON mv_drug_trials (drug_id)")
    sql("DROP INDEX mv_efficacy_evidence_by_nct")
    assert cli("diff", dsn=dsn).returncode == 0

    # A hand edit: the view recreated with a different definition and the same indexes.
    v1 = definitions.get("mv_drug_trials").version(1).query
    sql("DROP MATERIALIZED VIEW mv_drug_trials CASCADE")  # its check views with it
    sql(f"CREATE MATERIALIZED VIEW mv_drug_trials AS SELECT * FROM ({v1}\n) t"
        " WHERE role <> 'other'")
    for index in definitions.get("mv_drug_trials").version(1).indexes:
        sql(f"CREATE {'UNIQUE ' if index.unique else ''}INDEX {index.name} ON mv_drug_trials"
            f" ({', '.join(index.columns)})")
    edited = cli("diff", "mv_drug_trials", dsn=dsn)
    assert edited.returncode == 1, edited.stdout + edited.stderr
    assert "definition differs from v1/query.sql" in edited.stdout
    assert "+++ database" in edited.stdout and "'other'" in edited.stdout
    assert "missing index" not in edited.stdout

    sql("DROP MATERIALIZED VIEW mv_drug_trials CASCADE")  # its check views with it
    missing = cli("diff", dsn=dsn)
    assert missing.returncode == 1
    assert "missing view: public.mv_drug_trials does not exist" in missing.stdout

    unknown = cli("diff", "mv_nope", dsn=dsn)
    assert unknown.returncode == 2 and "unknown mart 'mv_nope'" in unknown.stderr


def test_new_version_scaffolds_a_working_migration(project, dsn, sql):
    head = ScriptDirectory.from_config(Config(str(project / "alembic.ini"))).get_current_head()
    runner = CliRunner()
    result = runner.invoke(cli.main, ["new-version", ROOT_MART])
    assert result.exit_code == 0, result.output
    v1 = project / "sql" / ROOT_MART / "v1"
    v2 = project / "sql" / ROOT_MART / "v2"
    assert f"{ROOT_MART}/v2/" in result.output
    # The whole version is copied: query, indexes and checks.
    assert sorted(p.relative_to(v2) for p in v2.rglob("*")) == sorted(
        p.relative_to(v1) for p in v1.rglob("*"))
    assert (v2 / "mart.toml").read_text() == (v1 / "mart.toml").read_text()
    query1, query2 = (v1 / "query.sql").read_text(), (v2 / "query.sql").read_text()
    assert query2.splitlines()[1:] == query1.splitlines()[1:]
    assert query2.startswith(f"-- {ROOT_MART} v2")
    [migration] = [p for p in (project / "migrations" / "versions").glob("*.py")
                   if ROOT_MART in p.name]
    assert migration.name in result.output
    script = ScriptDirectory.from_config(Config(str(project / "alembic.ini")))
    created = script.get_revision(script.get_current_head())
    assert created.down_revision == head and Path(created.path) == migration
    upgrade, downgrade = migration.read_text().split("def downgrade")
    assert f'op.replace_materialized_view("{ROOT_MART}", version=2)' in upgrade
    assert f'op.replace_materialized_view("{ROOT_MART}", version=1)' in downgrade
    # Nothing was written to the repository.
    assert not (PACKAGE_SQL / ROOT_MART / "v2").exists()
    assert not list((ROOT / "migrations" / "versions").glob(f"*{ROOT_MART}*"))

    # Edit the copy, then the scaffolded migration applies and reverts it.
    shutil.rmtree(v2)
    write_v2(project)
    migrate.upgrade(dsn)
    assert_rows_right(sql, 2, surroundings=False)
    migrate.downgrade(dsn, "-1")
    assert_rows_right(sql, 1, surroundings=False)

    unknown = runner.invoke(cli.main, ["new-version", "mv_nope"])
    assert unknown.exit_code == 2 and "unknown mart 'mv_nope'" in unknown.output


def test_replace_waits_for_a_running_refresh_and_then_holds_the_refresh_lock(project, dsn, sql):
    """A refresh committed between a side-by-side build and its swap would be thrown away
    while the run log calls it fresh: the replacement takes the refresh lock first."""
    write_v2(project)
    holder = psycopg2.connect(dsn)
    holder.autocommit = True
    try:
        holder.cursor().execute("SELECT bioloupe_views.try_refresh_lock()")
        started = time.perf_counter()
        with pytest.raises(CommandError, match=r"cannot replace mv_development_programs while a "
                                               r"refresh runs \(another refresh holds the lock: pid"):
            run_op(dsn, name=ROOT_MART, version=2, side_by_side=True,
                   lock_timeout="100ms", lock_retries=2)
        assert 0.25 < time.perf_counter() - started < 10
        assert_rows_right(sql, 1, surroundings=False)
        # Released meanwhile: the replacement waits for it, then goes ahead.
        threading.Timer(0.5, holder.cursor().execute,
                        ("SELECT bioloupe_views.release_refresh_lock()",)).start()
        result = run_op(dsn, name=ROOT_MART, version=2, side_by_side=True)
        assert result.refresh_lock_wait_seconds > 0.3
        # It let go of the lock at the end.
        assert sql("SELECT count(*) FROM bioloupe_views.refresh_lock_holder()") == [(0,)]
    finally:
        holder.close()
    assert_rows_right(sql, 2, surroundings=False)


def test_diff_reports_drift_in_checks_too(dsn, cli, sql):
    assert cli("diff", dsn=dsn).returncode == 0
    check = "accepted_values_mv_drug_trials_role"
    # A check edited by hand, one made a warning, one removed from the registry.
    sql(f"CREATE OR REPLACE VIEW bioloupe_views_checks.{check} AS"
        " SELECT role AS value_field, count(*) AS n_records FROM public.mv_drug_trials"
        " WHERE false GROUP BY role")
    sql("UPDATE bioloupe_views.mart_check SET severity = 'warn'"
        " WHERE name = 'not_null_mv_drug_trials_drug_id'")
    sql("DELETE FROM bioloupe_views.mart_check WHERE name = 'not_null_mv_drug_trials_role'")
    found = cli("diff", "mv_drug_trials", dsn=dsn)
    assert found.returncode == 1
    assert f"check {check}: its query differs from v1's (edited by hand?)" in found.stdout
    assert ("check not_null_mv_drug_trials_drug_id differs: declared severity error at v1,"
            " database has warn at v1") in found.stdout
    assert "missing check not_null_mv_drug_trials_role (declared by v1)" in found.stdout


def test_a_new_mart_has_statistics_as_soon_as_it_is_created(sources_dsn, sources_sql):
    """The app reads a mart right after the migration that creates it; without statistics
    its first queries are planned blind (autovacuum analyzes it only later)."""
    migrate.upgrade(sources_dsn)
    marts = list(definitions.marts())
    analyzed = sources_sql("SELECT DISTINCT tablename::text FROM pg_stats"
                           " WHERE schemaname = %s AND tablename = ANY(%s)",
                           (definitions.MART_SCHEMA, marts))
    assert sorted(r[0] for r in analyzed) == sorted(marts)
