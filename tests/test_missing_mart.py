"""A registered mart dropped by hand (or replaced by a table of its name): every command
stops with one line saying how to recover, and `alembic upgrade head` rebuilds it from its
installed version, with the marts above it and the check views the drop took."""

from __future__ import annotations

import uuid

from bioloupe_views import definitions
from tests.conftest import run_cli

PIPELINE = "mv_drug_pipeline"
ROOT = "mv_development_programs"
ALL_CHECKS = 40


def alembic(cli, dsn, *args, env=None):
    return cli("-x", f"dsn={dsn}", *args, executable="alembic", env=env)


def plugin(dsn):
    return run_cli("--pyargs", "bioloupe_views.data_checks", f"--bioloupe-dsn={dsn}",
                   "-p", "no:cacheprovider", "-q", "-rf", executable="pytest")


def fingerprint(sql, mart):
    return sql(f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {mart} t")[0]


def kind(sql, mart):
    rows = sql("SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass(%s)",
               (f"public.{mart}",))
    return rows[0][0] if rows else None


def assert_one_line_error(result, *expected):
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out, out
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: "), result.stderr
    for text in expected:
        assert text in line, line
    return line


def test_every_command_stops_on_a_mart_dropped_by_hand(dsn, cli, sql):
    sql(f"DROP MATERIALIZED VIEW {PIPELINE} CASCADE")
    runs = sql("SELECT count(*) FROM bioloupe_views.run")[0][0]
    expected = (f"mart {PIPELINE} is registered at version 1 but missing from the database",
                "run `alembic upgrade head` to rebuild it from its installed version")
    assert_one_line_error(cli(executable="refresh-views", dsn=dsn), *expected)
    assert sql("SELECT count(*) FROM bioloupe_views.run")[0][0] == runs  # nothing started
    assert_one_line_error(cli("check", dsn=dsn), *expected)
    status = cli("status", dsn=dsn)
    assert_one_line_error(status, *expected)
    assert "mv_drug_trials" in status.stdout  # the others' status still shows
    assert_one_line_error(cli("status", "--json", dsn=dsn), *expected)
    doctor = cli("doctor", dsn=dsn)
    assert_one_line_error(doctor, *expected)
    assert "Source indexes the marts' query plans use" in doctor.stdout

    checks = plugin(dsn)
    out = checks.stdout + checks.stderr
    assert checks.returncode == 1, out
    assert "1 failed" in out and "passed" not in out, out
    assert all(text in out for text in expected), out


def test_upgrade_head_rebuilds_it_from_its_installed_version(dsn, cli, sql):
    before = fingerprint(sql, PIPELINE)
    version = definitions.get(PIPELINE).version(1)
    reader = f"reader_{uuid.uuid4().hex[:8]}"
    sql(f"CREATE ROLE {reader} NOLOGIN")
    sql(f"DROP MATERIALIZED VIEW {PIPELINE} CASCADE")

    assert alembic(cli, dsn, "current").returncode == 0
    assert kind(sql, PIPELINE) is None  # `alembic current` changes nothing

    result = alembic(cli, dsn, "-x", f"reader_role={reader}", "upgrade", "head")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"rebuilt mart {PIPELINE} from its installed version 1" in result.stderr
    assert kind(sql, PIPELINE) == "m"
    assert fingerprint(sql, PIPELINE) == before
    indexes = {r[0] for r in sql("SELECT indexname FROM pg_indexes WHERE tablename = %s",
                                 (PIPELINE,))}
    assert indexes == {i.name for i in version.indexes}
    assert sql(f"SELECT obj_description('public.{PIPELINE}'::regclass)")[0][0] == version.description
    assert sql("SELECT reltuples >= 0 FROM pg_class WHERE oid = %s::regclass",
               (f"public.{PIPELINE}",))[0][0]  # analyzed
    assert sql("SELECT has_table_privilege(%s, %s, 'SELECT')", (reader, f"public.{PIPELINE}"))[0][0]
    assert sql("SELECT count(*) FROM bioloupe_views.mart WHERE name = %s", (PIPELINE,))[0][0] == 1

    check = cli("check", dsn=dsn)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"TOTAL={ALL_CHECKS}" in check.stdout and "ERROR=0" in check.stdout
    for command in (["status"], ["doctor"]):
        assert cli(*command, dsn=dsn).returncode == 0
    refresh = cli(executable="refresh-views", dsn=dsn)
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    assert "TOTAL=5" in refresh.stdout
    assert fingerprint(sql, PIPELINE) == before  # what a refresh builds

    again = alembic(cli, dsn, "upgrade", "head")  # nothing missing now: nothing rebuilt
    assert again.returncode == 0 and "rebuilt" not in again.stderr


def test_a_root_mart_dropped_by_hand_comes_back_with_what_the_drop_took(dsn, cli, sql):
    before = {m: fingerprint(sql, m) for m in definitions.marts()}
    sql(f"DROP MATERIALIZED VIEW {ROOT} CASCADE")  # its dependents and the checks reading it
    gone = sorted(m for m in definitions.marts() if kind(sql, m) is None)
    assert gone == ["mv_competitive_landscape", ROOT, PIPELINE]
    assert_one_line_error(cli(executable="refresh-views", dsn=dsn),
                          "marts mv_competitive_landscape (v1), mv_development_programs (v1), "
                          "mv_drug_pipeline (v1) are registered but missing",
                          "run `alembic upgrade head` to rebuild them")

    result = alembic(cli, dsn, "upgrade", "head")
    assert result.returncode == 0, result.stdout + result.stderr
    rebuilt = [line.split()[2] for line in result.stderr.splitlines()
               if line.startswith("rebuilt mart ")]
    assert rebuilt[0] == ROOT and sorted(rebuilt) == gone  # upstream first
    assert "reinstalled the checks of mart mv_efficacy_evidence" in result.stderr
    assert {m: fingerprint(sql, m) for m in definitions.marts()} == before
    check = cli("check", dsn=dsn)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"TOTAL={ALL_CHECKS}" in check.stdout and "ERROR=0" in check.stdout
    checks = plugin(dsn)
    assert checks.returncode == 0 and f"{ALL_CHECKS} passed" in checks.stdout, checks.stdout


def test_downgrade_base_works_after_a_drop(dsn, cli, sql):
    sql(f"DROP MATERIALIZED VIEW {PIPELINE} CASCADE")
    result = alembic(cli, dsn, "downgrade", "base")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert sql("SELECT to_regnamespace('bioloupe_views') IS NULL")[0][0]
    assert all(kind(sql, m) is None for m in definitions.marts())
    up = alembic(cli, dsn, "upgrade", "head")
    assert up.returncode == 0, up.stdout + up.stderr
    assert all(kind(sql, m) == "m" for m in definitions.marts())


def test_a_table_in_the_marts_place_is_named_and_never_dropped(dsn, cli, sql):
    sql(f"DROP MATERIALIZED VIEW {PIPELINE} CASCADE")
    sql(f"CREATE TABLE public.{PIPELINE} AS SELECT 1 AS mine")
    expected = (f"mart {PIPELINE} is registered at version 1 but public.{PIPELINE} is a table, "
                "not its materialized view", "rename or drop that table, then run "
                "`alembic upgrade head`")
    for command in (["check"], ["status"], ["doctor"]):
        assert_one_line_error(cli(*command, dsn=dsn), *expected)
    assert_one_line_error(cli(executable="refresh-views", dsn=dsn), *expected)

    for args in (["upgrade", "head"], ["downgrade", "base"]):
        refused = alembic(cli, dsn, *args)
        out = refused.stdout + refused.stderr
        assert refused.returncode != 0 and "Traceback" not in out, out
        assert f"FAILED: cannot migrate: mart {PIPELINE} is registered" in out, out
        assert "rename or drop that table, then migrate again" in out
        assert sql(f"SELECT mine FROM public.{PIPELINE}") == [(1,)]  # the user's table kept
        assert sql("SELECT to_regnamespace('bioloupe_views') IS NOT NULL")[0][0]

    sql(f"ALTER TABLE public.{PIPELINE} RENAME TO kept_by_hand")
    result = alembic(cli, dsn, "upgrade", "head")
    assert result.returncode == 0, result.stdout + result.stderr
    assert kind(sql, PIPELINE) == "m"
    assert cli("check", dsn=dsn).returncode == 0

