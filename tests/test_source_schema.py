"""The sources' schema is a setting (`-x source_schema=NAME`, BIOLOUPE_SOURCE_SCHEMA; default
public), and the contract check, the marts and their checks read that schema, bound when
they are created: never whatever a session's search_path finds first."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import sql as pgsql

from bioloupe_views import contract

from tests.conftest import MARTS, assert_equal_to_seed

# An empty copy of a source earlier on the migrating session's path: what used to be read.
DECOY_PATH = {"PGOPTIONS": "-c search_path=decoy,src,public"}


@pytest.fixture
def moved_sources(sources_dsn, sources_sql):
    """The synthetic sources moved to schema src, and an empty `drugs` in schema decoy."""
    sources_sql("CREATE SCHEMA src")
    sources_sql("CREATE SCHEMA decoy")
    for table in contract.tables():
        sources_sql(pgsql.SQL("ALTER TABLE {} SET SCHEMA src").format(
            pgsql.Identifier("public", table)))
    sources_sql("CREATE TABLE decoy.drugs (LIKE src.drugs)")
    return sources_dsn


def _alembic(cli, dsn, *args, env=None):
    """`alembic upgrade head`; its output (Alembic prints its failure on stdout) in .output."""
    result = cli(*args, "upgrade", "head", executable="alembic", dsn=dsn, env=env)
    result.output = result.stdout + result.stderr
    return result


def _bound_schemas(sql_runner):
    """The schemas of the relations the marts and the check views read (catalog)."""
    return sql_runner(
        "SELECT DISTINCT n.nspname FROM pg_depend d"
        " JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass"
        " JOIN pg_class v ON v.oid = r.ev_class"
        " JOIN pg_namespace vn ON vn.oid = v.relnamespace"
        " JOIN pg_class t ON t.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass"
        " JOIN pg_namespace n ON n.oid = t.relnamespace"
        " WHERE vn.nspname IN ('public', 'bioloupe_views_checks') AND t.relname = ANY(%s)",
        (list(contract.tables()),))


@pytest.mark.parametrize("how", ["x_argument", "environment"])
def test_marts_and_checks_read_the_configured_schema_not_the_search_path(
        cli, moved_sources, sources_sql, how):
    if how == "x_argument":
        result = _alembic(cli, moved_sources, "-x", "source_schema=src", env=DECOY_PATH)
    else:
        result = _alembic(cli, moved_sources, env={**DECOY_PATH, "BIOLOUPE_SOURCE_SCHEMA": "src"})
    assert result.returncode == 0, result.output
    assert _bound_schemas(sources_sql) == [("src",)]
    conn = psycopg2.connect(moved_sources, options="-c search_path=src,public")
    try:
        assert_equal_to_seed(conn)
    finally:
        conn.close()
    # A refresh from a session whose path finds the decoy first still reads src.
    refreshed = cli(dsn=moved_sources, env=DECOY_PATH, executable="refresh-views")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert sources_sql("SELECT count(*) > 0 FROM public.mv_development_programs") == [(True,)]
    assert "ERROR=0 FAIL=0" in refreshed.stdout


def test_the_contract_is_checked_in_the_configured_schema(cli, moved_sources, sources_sql):
    # public has no sources now: the default finds none, whatever the path finds.
    result = _alembic(cli, moved_sources, env=DECOY_PATH)
    assert result.returncode != 0
    assert "source contract is not met in schema public" in result.output
    assert "BIOLOUPE_SOURCE_SCHEMA" in result.output
    assert sources_sql("SELECT count(*) FROM pg_matviews") == [(0,)]
    # decoy has a `drugs` but not the rest: named, nothing created.
    result = _alembic(cli, moved_sources, "-x", "source_schema=decoy")
    assert result.returncode != 0
    assert "not met in schema decoy (missing tables: diseases" in result.output
    assert sources_sql("SELECT count(*) FROM pg_matviews") == [(0,)]


def test_unknown_source_schema_is_one_line(cli, moved_sources):
    result = _alembic(cli, moved_sources, "-x", "source_schema=nope")
    assert result.returncode != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith("source schema nope does not exist: set -x source_schema=NAME or "
                              "BIOLOUPE_SOURCE_SCHEMA to the schema that holds the source tables")
    assert "Traceback" not in result.output


def test_a_relation_named_like_a_mart_in_the_source_schema_is_refused(cli, moved_sources,
                                                                    sources_sql):
    sources_sql("CREATE TABLE src.mv_development_programs (drug_id bigint)")
    result = _alembic(cli, moved_sources, "-x", "source_schema=src")
    assert result.returncode != 0
    assert "relations named like a mart: mv_development_programs" in result.output


def test_the_schema_sticks_and_cannot_change_under_installed_marts(cli, moved_sources,
                                                                  sources_sql):
    assert _alembic(cli, moved_sources, "-x", "source_schema=src").returncode == 0
    # Later runs without the setting (new versions, doctor) keep reading src.
    assert _alembic(cli, moved_sources).returncode == 0
    doctor = cli("doctor", dsn=moved_sources)
    assert doctor.returncode == 0, doctor.stderr
    assert "(schema src)" in doctor.stdout
    assert all(' ON "src".' in line for line in doctor.stdout.splitlines()
               if line.startswith("CREATE INDEX"))
    # Asking for another schema under installed marts is refused, nothing changed.
    moved = _alembic(cli, moved_sources, env={"BIOLOUPE_SOURCE_SCHEMA": "decoy"})
    assert moved.returncode != 0
    assert ("the installed marts read their sources from schema src, not decoy"
            in moved.output)
    assert _bound_schemas(sources_sql) == [("src",)]
    assert sorted(m for (m,) in sources_sql("SELECT matviewname FROM pg_matviews")) == sorted(MARTS)
