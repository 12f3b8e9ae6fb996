"""One refresh engine: refresh-views, pg_cron's CALL bioloupe_views.refresh_all() and the
check runners (`check`, the pytest plugin) give the same outcome, statuses and messages for
the same situation, because they all drive the database's own routines. And the engine
arrives by migration on a live install: a database at 0001 with run history goes to head
and back, keeping its history, and each engine refreshes."""

from __future__ import annotations

import subprocess
import threading
import time

import psycopg2
import pytest

from bioloupe_views import migrate
from tests.conftest import MARTS, add_check, run_cli
from tests.test_checks import check_results

ROOT_MART = "mv_development_programs"
DEPENDENTS = {"mv_competitive_landscape", "mv_drug_pipeline"}
INDEPENDENT = {"mv_drug_trials", "mv_efficacy_evidence"}


def _outcome(sql, run_id) -> dict[str, tuple]:
    return {mart: (status, error) for mart, status, error in sql(
        "SELECT mart, status, error FROM bioloupe_views.run_log WHERE run_id = %s", (run_id,))}


def _last_run(sql, trigger: str):
    return sql("SELECT run_id, status FROM bioloupe_views.run WHERE trigger = %s"
               " ORDER BY started_at DESC LIMIT 1", (trigger,))[0]


def _pytest_plugin(dsn: str) -> subprocess.CompletedProcess:
    return run_cli("--pyargs", "bioloupe_views.data_checks", f"--bioloupe-dsn={dsn}", "-q",
                   "-p", "no:cacheprovider", "-k", "warn_errors or no_orphans",
                   executable="pytest")


def test_the_same_failure_has_the_same_outcome_through_every_client(dsn, cli, sql):
    # A warn-severity check that cannot run (its query errors). It is never a pass, so it
    # blocks the publish, in every client alike.
    add_check(dsn, ROOT_MART, "assert_warn_errors", "SELECT 1 / 0 AS x", severity="warn")
    before = sql(f"SELECT md5(string_agg(t::text, '' ORDER BY t::text)) FROM {ROOT_MART} t")

    result = cli("refresh", dsn=dsn)
    assert result.returncode == 1
    assert "FAIL mv_development_programs" in result.stdout
    cli_run, cli_status = _last_run(sql, "cli")

    sql("CALL bioloupe_views.refresh_all()")
    cron_run, cron_status = _last_run(sql, "pg_cron")

    assert cli_status == cron_status == "error"
    cli_outcome, cron_outcome = _outcome(sql, cli_run), _outcome(sql, cron_run)
    assert cli_outcome == cron_outcome
    assert cli_outcome[ROOT_MART] == ("check_failed", None)
    for mart in DEPENDENTS:
        assert cli_outcome[mart] == ("skipped", f"upstream {ROOT_MART} did not refresh")
    for mart in INDEPENDENT:
        assert cli_outcome[mart] == ("success", None)
    assert sql(f"SELECT md5(string_agg(t::text, '' ORDER BY t::text)) FROM {ROOT_MART} t") == before

    # The checks' own runners say the same: the check errors, and that fails the run.
    check = cli("check", "--select", ROOT_MART, dsn=dsn)
    assert check.returncode == 1
    assert "ERROR assert_warn_errors" in check.stdout and "division by zero" in check.stdout
    plugin = _pytest_plugin(dsn)
    assert plugin.returncode == 1, plugin.stdout + plugin.stderr
    assert "1 failed, 1 passed" in plugin.stdout, plugin.stdout
    assert "assert_warn_errors could not run: division by zero" in plugin.stdout


def test_an_unknown_mart_is_rejected_by_every_client_and_releases_the_lock(dsn, cli, sql):
    result = cli("refresh", "--select", "mv_nope", dsn=dsn)
    assert result.returncode == 2
    assert "unknown mart 'mv_nope'" in result.stderr

    with pytest.raises(psycopg2.errors.InvalidParameterValue) as raised:
        sql("CALL bioloupe_views.refresh_all(ARRAY['mv_nope'])")
    assert "unknown mart 'mv_nope': valid names are mv_competitive_landscape" in str(raised.value)
    # Nothing was left behind: no lock, no run, and the next run goes ahead.
    assert sql("SELECT count(*) FROM bioloupe_views.refresh_lock_holder()") == [(0,)]
    assert sql("SELECT count(*) FROM bioloupe_views.run") == [(0,)]
    assert cli("refresh", dsn=dsn).returncode == 0


def test_the_run_log_is_the_queue_and_every_mart_ends_logged(dsn, cli, sql, tmp_path):
    out = tmp_path / "run.json"
    assert cli("refresh", "--threads", "2", "--json", str(out), dsn=dsn).returncode == 0
    run_id, status = _last_run(sql, "cli")
    assert status == "success"
    rows = sql("SELECT mart, status, position, pid IS NOT NULL, rows, started_at <= ended_at"
               " FROM bioloupe_views.run_log WHERE run_id = %s ORDER BY position", (run_id,))
    assert [r[2] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0][0] == ROOT_MART  # level 0 first, by name
    assert all(r[1] == "success" and r[3] and r[4] > 0 and r[5] for r in rows)
    # Two workers, two sessions: their pids are the ones that claimed the marts.
    assert 1 <= len({pid for (pid,) in sql(
        "SELECT pid FROM bioloupe_views.run_log WHERE run_id = %s", (run_id,))}) <= 2


def _history(sql) -> list[tuple]:
    return sql("SELECT l.id, l.run_id::text, l.mart, l.status, l.trigger, l.rows"
               " FROM bioloupe_views.run_log l ORDER BY l.id")


def test_upgrade_from_a_populated_0001_with_history_and_back(sources_dsn, sources_sql, cli):
    dsn, sql = sources_dsn, sources_sql
    # Months of history, as the 0001 engine wrote it: runs from pg_cron and a failed one.
    migrate.upgrade(dsn, "0001")
    sql("CALL bioloupe_views.refresh_all()")
    sql("CALL bioloupe_views.refresh_all(ARRAY['mv_drug_trials'], true, true, 'cli')")
    sql("INSERT INTO bioloupe_views.check_definition (name, mart, test, severity, position, sql)"
        " VALUES ('v1_canary', 'mv_drug_pipeline', 'singular', 'error', 99, 'SELECT 1 AS x')")
    sql("CALL bioloupe_views.refresh_all(ARRAY['mv_drug_pipeline'])")
    sql("DELETE FROM bioloupe_views.check_definition WHERE name = 'v1_canary'")
    v1_history = _history(sql)
    assert {r[3] for r in v1_history} == {"success", "check_failed"}
    v1_runs = sql("SELECT run_id::text, status FROM bioloupe_views.run ORDER BY started_at")
    assert len(v1_runs) == 3

    migrate.upgrade(dsn)
    assert _history(sql) == v1_history
    assert sql("SELECT run_id::text, status FROM bioloupe_views.run"
               " ORDER BY started_at") == v1_runs
    assert sql("SELECT to_regclass('bioloupe_views.check_definition')") == [(None,)]
    assert sql("SELECT count(*) FROM bioloupe_views.mart_check") == [(40,)]
    assert cli("refresh", dsn=dsn).returncode == 0
    assert cli("diff", dsn=dsn).returncode == 0
    sql("CALL bioloupe_views.refresh_all()")
    head_history = _history(sql)
    assert head_history[:len(v1_history)] == v1_history and len(head_history) == len(v1_history) + 10

    migrate.downgrade(dsn, "0001")
    assert _history(sql) == head_history
    assert sql("SELECT to_regnamespace('bioloupe_views_checks')") == [(None,)]
    assert sql("SELECT count(*) FROM bioloupe_views.check_definition") == [(40,)]
    # The 0001 engine refreshes again, with its checks.
    sql("CALL bioloupe_views.refresh_all()")
    last = sql("SELECT status, count(*) FROM bioloupe_views.run_log WHERE run_id ="
               " (SELECT run_id FROM bioloupe_views.run ORDER BY started_at DESC LIMIT 1)"
               " GROUP BY status")
    assert last == [("success", 5)]
    checks = sql("SELECT status, count(*) FROM bioloupe_views.run_checks(NULL) GROUP BY 1")
    assert dict(checks).get("fail") is None and sum(n for _, n in checks) == 40

    # And up again: the history of every engine is kept.
    migrate.upgrade(dsn)
    assert len(_history(sql)) == len(head_history) + 5
    assert cli("refresh", dsn=dsn).returncode == 0


def test_a_statement_timeout_on_the_pg_cron_call_never_leaks_the_lock(dsn, cli, sql):
    """`SET statement_timeout = '1s'; CALL refresh_all()` in a session that stays open (psql)
    while one mart waits for a source lock: that mart is logged as timed out, the others
    refresh, the run is closed, and the session does not keep the refresh lock."""
    blocker = psycopg2.connect(dsn)
    blocker.cursor().execute("LOCK TABLE public.trial_arm_results IN ACCESS EXCLUSIVE MODE")
    release = threading.Timer(4, blocker.rollback)
    release.start()
    session = psycopg2.connect(dsn)
    session.autocommit = True
    try:
        with session.cursor() as cur:
            cur.execute("SET statement_timeout = '1s'")
            cur.execute("CALL bioloupe_views.refresh_all()")
        run_id, status = _last_run(sql, "pg_cron")
        outcome = _outcome(sql, run_id)
        assert status == "error"
        assert outcome["mv_efficacy_evidence"] == (
            "error", "canceling statement due to statement timeout")
        assert {m for m, (s, _) in outcome.items() if s == "success"} == (
            DEPENDENTS | {ROOT_MART, "mv_drug_trials"})
        # The session is still open and holds nothing: the next run goes ahead at once.
        assert sql("SELECT count(*) FROM bioloupe_views.refresh_lock_holder()") == [(0,)]
        assert cli("refresh", dsn=dsn).returncode == 0
    finally:
        release.join()
        session.close()
        blocker.close()


def test_the_run_log_keeps_its_retention_and_prunes_itself(dsn, cli, sql):
    assert cli("refresh", dsn=dsn).returncode == 0
    # A run from 100 days ago, with its marts' rows.
    sql("UPDATE bioloupe_views.run SET started_at = now() - interval '100 days'")
    old = sql("SELECT run_id FROM bioloupe_views.run")[0][0]
    # Its rows are each mart's latest successful refresh when the next run starts: kept.
    assert cli("refresh", dsn=dsn).returncode == 0          # default retention: 90 days
    assert sql("SELECT count(*) FROM bioloupe_views.run_log WHERE run_id = %s", (old,)) == [(5,)]
    assert cli("refresh", dsn=dsn).returncode == 0
    assert sql("SELECT count(*) FROM bioloupe_views.run WHERE run_id = %s", (old,)) == [(0,)]
    assert sql("SELECT count(*) FROM bioloupe_views.run_log WHERE run_id = %s", (old,)) == [(0,)]
    assert sql("SELECT count(*) FROM bioloupe_views.run") == [(2,)]
    # A shorter setting, from the CLI and from pg_cron's procedure: the run holding each
    # mart's latest success stays, the one before it goes.
    time.sleep(1.1)
    assert cli("refresh", "--log-retention", "1s", dsn=dsn).returncode == 0
    assert sql("SELECT count(*) FROM bioloupe_views.run") == [(2,)]
    time.sleep(1.1)
    sql("CALL bioloupe_views.refresh_all(p_retention => '1 second')")
    assert sql("SELECT trigger, count(*) FROM bioloupe_views.run GROUP BY 1 ORDER BY 1") == [
        ("cli", 1), ("pg_cron", 1)]
    assert sql("SELECT count(*) FROM bioloupe_views.run_log") == [(10,)]
    bad = cli("refresh", "--log-retention", "forever", dsn=dsn)
    assert bad.returncode == 2 and "is not a duration" in bad.stderr


def test_retention_zero_keeps_each_marts_latest_successful_refresh(dsn, cli, sql):
    """What STALE, --max-age, Dagster's freshness and --changed-only read is never pruned."""
    assert cli("refresh", dsn=dsn).returncode == 0
    sql("UPDATE bioloupe_views.run SET started_at = now() - interval '1 day'")
    time.sleep(0.1)
    assert cli("refresh", "--log-retention", "0", dsn=dsn).returncode == 0
    assert cli("refresh", "--log-retention", "0", dsn=dsn).returncode == 0
    kept = sql("SELECT mart, count(*) FROM bioloupe_views.run_log WHERE status = 'success'"
               " GROUP BY mart ORDER BY mart")
    assert [m for m, _ in kept] == sorted(MARTS) and all(n >= 1 for _, n in kept)
    fresh = cli("status", "--max-age", "5min", dsn=dsn)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "never" not in fresh.stdout


def test_the_same_rows_whatever_the_client_session_time_zone(dsn, cli, sql):
    """mv_development_programs converts dates to timestamptz: a client with PGTZ set must not
    store other values than a default session or pg_cron (compared in one reading session)."""
    def fingerprint():
        return sql("SELECT md5(string_agg(t::text, '|' ORDER BY t::text))"
                   " FROM public.mv_development_programs t")
    assert cli("refresh", "--no-concurrently", dsn=dsn).returncode == 0
    default = fingerprint()
    far = cli("refresh", "--no-concurrently", dsn=dsn, env={"PGTZ": "Pacific/Kiritimati"})
    assert far.returncode == 0, far.stderr
    assert fingerprint() == default
    sql("SET TimeZone = 'America/Adak'")
    sql("CALL bioloupe_views.refresh_all(NULL, false)")
    sql("RESET TimeZone")
    assert fingerprint() == default
    assert sql("SELECT name, value FROM bioloupe_views.refresh_setting") == [
        ("TimeZone", sql("SELECT reset_val FROM pg_settings WHERE name = 'TimeZone'")[0][0])]


def test_the_longest_critical_path_is_queued_first(dsn, sql, cli):
    """On few cores the mart that others wait for starts first: the queue orders marts by
    their last refresh times plus the longest chain waiting on them, not by name."""
    first = cli(dsn=dsn, executable="refresh-views")  # some history to learn from
    assert first.returncode == 0, first.stdout + first.stderr
    last = {"mv_drug_trials": 1, "mv_efficacy_evidence": 5, "mv_development_programs": 4,
            "mv_competitive_landscape": 3, "mv_drug_pipeline": 0.5}
    for mart, seconds in last.items():
        sql("UPDATE bioloupe_views.run_log SET duration_seconds = %s WHERE id ="
            " (SELECT max(id) FROM bioloupe_views.run_log WHERE mart = %s AND status = 'success')",
            (seconds, mart))
    # programs holds up efficacy, whose check reads it (4 + 5 = 9 s), and landscape (4 + 3):
    # before efficacy (5 s), before landscape (3 s) and trials (1 s).
    assert dict(sql("SELECT mart, seconds FROM bioloupe_views.refresh_priority")) == {
        "mv_development_programs": 9, "mv_efficacy_evidence": 5, "mv_competitive_landscape": 3,
        "mv_drug_trials": 1, "mv_drug_pipeline": 0.5}
    result = cli("--threads", "1", dsn=dsn, executable="refresh-views")
    assert result.returncode == 0, result.stdout + result.stderr
    order = [m for (m,) in sql(
        "SELECT mart FROM bioloupe_views.run_log WHERE run_id = (SELECT run_id FROM"
        " bioloupe_views.run ORDER BY started_at DESC LIMIT 1) ORDER BY position")]
    assert order == ["mv_development_programs", "mv_efficacy_evidence",
                     "mv_competitive_landscape", "mv_drug_trials", "mv_drug_pipeline"]


def test_0003_down_to_0002_and_up_again_keeps_a_run_of_unchanged_marts(dsn, cli, sql):
    """The change log arrives with 0003: down to 0002 the history is kept (an unchanged mart
    becomes skipped, with why), the triggers on the sources go, and up again it all works."""
    assert cli("track-sources", "--apply", dsn=dsn).returncode == 0
    assert cli("refresh", "--threads", "1", dsn=dsn).returncode == 0
    unchanged = cli("refresh", "--changed-only", dsn=dsn)
    assert unchanged.returncode == 0 and "UNCHANGED=5" in unchanged.stdout, unchanged.stdout
    v3_history = _history(sql)
    assert [r[3] for r in v3_history[-5:]] == ["unchanged"] * 5

    migrate.downgrade(dsn, "0002")
    assert _history(sql) == [r[:3] + ("skipped" if r[3] == "unchanged" else r[3],) + r[4:]
                             for r in v3_history]
    assert {e for (e,) in sql("SELECT error FROM bioloupe_views.run_log WHERE status = 'skipped'")
            } == {e for (e,) in sql("SELECT 'unchanged since ' || to_char(max(ended_at),"
                                    " 'YYYY-MM-DD HH24:MI:SS') FROM bioloupe_views.run_log"
                                    " WHERE status = 'success' GROUP BY mart")}
    assert sql("SELECT count(*) FROM pg_trigger WHERE tgname = 'bioloupe_views_source_change'") == [(0,)]
    assert sql("SELECT to_regclass('bioloupe_views.source_change'),"
               " to_regprocedure('bioloupe_views.log_source_change()')") == [(None, None)]
    sql("UPDATE public.drugs SET id = id WHERE false")       # sources write as before
    sql("CALL bioloupe_views.refresh_all()")
    sql("CALL bioloupe_views.refresh_all(p_trigger => 'cli')")
    v2_history = _history(sql)
    assert len(v2_history) == len(v3_history) + 10

    migrate.upgrade(dsn)
    assert _history(sql) == v2_history
    assert cli("track-sources", "--apply", dsn=dsn).returncode == 0
    assert cli("refresh", "--threads", "1", dsn=dsn).returncode == 0
    again = cli("refresh", "--changed-only", dsn=dsn)
    assert again.returncode == 0 and "UNCHANGED=5" in again.stdout, again.stdout


def test_0004_down_to_0003_and_up_again_keeps_history_and_the_wait(dsn, cli, sql):
    """0004 adds the checks' wait for the earlier marts they read and the check snapshot:
    down to 0003 a populated database keeps its run history (less that column) and
    refreshes as 0003 did, and up again the wait is back."""
    def waits():
        return "check_snapshot" in sql("SELECT prosrc FROM pg_proc WHERE proname = 'refresh_mart'")[0][0]

    assert cli("refresh", dsn=dsn).returncode == 0
    history = _history(sql)
    migrate.downgrade(dsn, "0003")
    assert sql("SELECT version_num FROM public.bioloupe_views_alembic_version") == [("0003",)]
    assert _history(sql) == history and not waits()
    assert cli("refresh", dsn=dsn).returncode == 0
    migrate.upgrade(dsn)
    assert _history(sql)[:len(history)] == history and len(_history(sql)) == len(history) + 5
    assert waits()
    assert cli("refresh", dsn=dsn).returncode == 0
    assert sql("SELECT count(*) FROM bioloupe_views.run_log WHERE check_snapshot IS NOT NULL") == [(5,)]


def test_0005_down_to_0004_and_up_again_keeps_history_and_the_guarded_check(dsn, cli, sql,
                                                                             tmp_path):
    """0005 lets the efficacy mart's unique index imply its unique check while no
    source_type holds a '-' (a guard counted in the mart's one scan): down to 0004 a
    populated database keeps its run history and runs that check for real again, and up
    again the check is implied once more, with the same results."""
    name = "unique_mv_efficacy_evidence_source_type_evidence_id_drug_id_disease_id"

    def note():
        _, by_name = check_results(cli, dsn, tmp_path, "--select", "mv_efficacy_evidence")
        return by_name[name]["status"], by_name[name].get("note")

    assert cli("refresh", dsn=dsn).returncode == 0
    history = _history(sql)
    assert note() == ("pass", "implied by unique index mv_efficacy_evidence_key")
    migrate.downgrade(dsn, "0004")
    assert sql("SELECT version_num FROM public.bioloupe_views_alembic_version") == [("0004",)]
    assert _history(sql) == history
    assert note() == ("pass", None)
    assert cli("refresh", dsn=dsn).returncode == 0
    migrate.upgrade(dsn)
    assert _history(sql)[:len(history)] == history and len(_history(sql)) == len(history) + 5
    assert note() == ("pass", "implied by unique index mv_efficacy_evidence_key")
    assert cli("refresh", dsn=dsn).returncode == 0
