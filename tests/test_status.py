"""Issue 8: `bioloupe-views status`, one row per mart from the catalog and the run log."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import psycopg2

from tests.conftest import add_check

MARTS = ["mv_development_programs", "mv_drug_trials", "mv_efficacy_evidence",
         "mv_competitive_landscape", "mv_drug_pipeline"]


def status_json(cli, dsn):
    result = cli("status", "--json", dsn=dsn)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return data, {m["mart"]: m for m in data["marts"]}


def ts(value):
    return datetime.fromisoformat(value)


def test_before_any_refresh_staleness_counts_from_the_migration(dsn, cli, sql):
    data, by_mart = status_json(cli, dsn)
    assert [m["mart"] for m in data["marts"]] == [
        m for m, _ in sql("SELECT mart, level FROM bioloupe_views.refresh_order ORDER BY level, mart")]
    migrated = dict(sql("SELECT name, migrated_at FROM bioloupe_views.mart"))
    for mart in MARTS:
        m = by_mart[mart]
        assert m["populated"] is True
        assert m["last_refresh"] is None and m["checks"] is None and m["last_success_at"] is None
        assert ts(m["fresh_as_of"]) == migrated[mart]
        age = (ts(data["generated_at"]) - migrated[mart]).total_seconds()
        assert abs(m["stale_seconds"] - age) < 1
    assert data["running"] is None and data["last_run"] is None


def test_rows_size_last_refresh_checks_and_staleness(dsn, cli, sql):
    assert cli("refresh", dsn=dsn).returncode == 0
    # A warn check that fails, then a run where mv_drug_trials errors (statement timeout).
    add_check(dsn, "mv_drug_pipeline", "warn_always", "SELECT 1 AS x", severity="warn")
    assert cli("refresh", "--select", "mv_drug_pipeline", dsn=dsn).returncode == 0
    assert cli("refresh", "--select", "mv_drug_trials", "--statement-timeout", "1ms",
               dsn=dsn).returncode == 1
    data, by_mart = status_json(cli, dsn)
    log = {}
    for mart, status, mode, trigger, started, ended, duration, checks, error in sql(
            "SELECT mart, status, mode, trigger, started_at, ended_at, duration_seconds::float8,"
            " checks, error FROM bioloupe_views.run_log ORDER BY id"):
        log.setdefault(mart, []).append(dict(status=status, mode=mode, trigger=trigger,
                                             started=started, ended=ended, duration=duration,
                                             checks=checks, error=error))
    for mart in MARTS:
        m = by_mart[mart]
        count = sql(f"SELECT count(*) FROM public.{mart}")[0][0]
        assert m["estimated_rows"] == count            # ANALYZE ran with the refresh
        assert m["size_bytes"] == sql("SELECT pg_total_relation_size(%s::regclass)",
                                      (f"public.{mart}",))[0][0]
        heap = sql("SELECT pg_relation_size(%s::regclass)", (f"public.{mart}",))[0][0]
        assert m["size_bytes"] > heap                  # the indexes are counted
        last = log[mart][-1]
        assert m["last_refresh"]["status"] == last["status"]
        assert m["last_refresh"]["mode"] == last["mode"]
        assert m["last_refresh"]["trigger"] == "cli"
        assert ts(m["last_refresh"]["ended_at"]) == last["ended"]
        assert abs(m["last_refresh"]["duration_seconds"] - last["duration"]) < 0.001
        with_checks = [r for r in log[mart] if isinstance(r["checks"], list)][-1]
        expected = {s: sum(c["status"] == s for c in with_checks["checks"])
                    for s in ("pass", "warn", "fail", "error")}
        assert {k: m["checks"][k] for k in expected} == expected
        success = [r for r in log[mart] if r["status"] == "success"][-1]
        assert ts(m["last_success_at"]) == success["ended"]
        age = (ts(data["generated_at"]) - success["ended"]).total_seconds()
        assert abs(m["stale_seconds"] - age) < 1
    assert by_mart["mv_drug_pipeline"]["checks"]["warn"] >= 1
    trials = by_mart["mv_drug_trials"]
    assert trials["last_refresh"]["status"] == "error"
    assert "statement timeout" in trials["last_refresh"]["error"]
    assert trials["checks"]["pass"] > 0                # from its last run that ran checks
    assert data["last_run"]["status"] == "error"

    table = cli("status", dsn=dsn)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    header = next(i for i, l in enumerate(lines) if l.startswith("MART "))
    for column in ("POPULATED", "ROWS (EST.)", "SIZE", "LAST REFRESH", "TOOK", "MODE", "STATUS",
                   "TRIGGER", "CHECKS", "STALE"):
        assert column in lines[header]
    rows = lines[header + 1:header + 1 + len(MARTS)]
    assert [r.split()[0] for r in rows] == [m["mart"] for m in data["marts"]]
    pipeline = next(r for r in rows if r.startswith("mv_drug_pipeline "))
    assert f"{by_mart['mv_drug_pipeline']['estimated_rows']:,}" in pipeline
    assert "concurrent" in pipeline and "success" in pipeline and "1 warn" in pipeline
    assert "mv_drug_trials: error: canceling statement due to statement timeout" in table.stdout


def test_unpopulated_mart_and_a_running_refresh(dsn, cli, sql):
    sql("REFRESH MATERIALIZED VIEW public.mv_drug_trials WITH NO DATA")
    holder = psycopg2.connect(dsn)
    holder.autocommit = True
    try:
        holder.cursor().execute("SELECT bioloupe_views.try_refresh_lock()")
        holder_pid = holder.get_backend_pid()
        data, by_mart = status_json(cli, dsn)
        table = cli("status", dsn=dsn)
    finally:
        holder.close()
    trials = by_mart["mv_drug_trials"]
    assert trials["populated"] is False and trials["stale_seconds"] is None
    assert data["running"]["pid"] == holder_pid
    row = next(r for r in table.stdout.splitlines() if r.startswith("mv_drug_trials "))
    assert " NO " in row and row.rstrip().endswith("unpopulated")
    assert f"A refresh is running now: pid {holder_pid}" in table.stdout


def test_status_reads_pg_cron_runs_too(dsn, cli, sql):
    sql("CALL bioloupe_views.refresh_all(ARRAY['mv_drug_trials'])")
    _, by_mart = status_json(cli, dsn)
    assert by_mart["mv_drug_trials"]["last_refresh"]["trigger"] == "pg_cron"
    assert by_mart["mv_drug_trials"]["last_refresh"]["status"] == "success"
    assert by_mart["mv_development_programs"]["last_refresh"] is None
    now = datetime.now(timezone.utc)
    assert (now - ts(by_mart["mv_drug_trials"]["last_success_at"])).total_seconds() < 60


def test_max_age_names_the_marts_not_refreshed_recently_enough(dsn, cli, sql):
    # Never refreshed, built by the migration 3 hours ago: as old as STALE says, exit 1.
    sql("UPDATE bioloupe_views.mart SET migrated_at = now() - interval '3 hours'")
    result = cli("status", "--max-age", "2h", dsn=dsn)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("Error: last successful refresh older than 2h:")
    assert all(f"{m} (built by the migration 3h ago)" in line for m in MARTS)

    assert cli("refresh", dsn=dsn).returncode == 0
    result = cli("status", "--max-age", "2h", dsn=dsn)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""

    # One mart's last success 3 hours ago, a later failed attempt does not count.
    sql("UPDATE bioloupe_views.run_log SET ended_at = now() - interval '3 hours'"
        " WHERE mart = 'mv_drug_trials'")
    assert cli("refresh", "--select", "mv_drug_trials", "--statement-timeout", "1ms",
               dsn=dsn).returncode == 1
    result = cli("status", "--max-age", "2h", "--json", dsn=dsn)
    assert result.returncode == 1
    assert json.loads(result.stdout)["marts"]  # the report is still printed
    assert "mv_drug_trials (3h ago)" in result.stderr
    assert not any(m in result.stderr for m in MARTS if m != "mv_drug_trials")
    assert cli("status", "--max-age", "4h", dsn=dsn).returncode == 0


def test_max_age_rejects_a_bad_duration_in_one_line(dsn, cli):
    result = cli("status", "--max-age", "two hours", dsn=dsn)
    assert result.returncode == 2
    assert result.stderr == ("Error: --max-age 'two hours' is not a duration; use e.g. 500ms, "
                             "90s, 10m, 1h30m, 2d (a bare number is seconds)\n")


def test_a_fresh_migration_build_counts_the_same_in_stale_and_max_age(dsn, cli, sql):
    # Built by the migration seconds ago, never refreshed: fresh in both, named as such.
    # (The test database is a copy of one migrated when the session began.)
    sql("UPDATE bioloupe_views.mart SET migrated_at = now()")
    _, by_mart = status_json(cli, dsn)
    assert all(by_mart[m]["built_by_migration"] and by_mart[m]["stale_seconds"] < 600
               for m in MARTS)
    assert cli("status", "--max-age", "10m", dsn=dsn).returncode == 0
    table = cli("status", dsn=dsn).stdout
    migrated = {name: at.astimezone().strftime("%Y-%m-%d %H:%M:%S")  # as status prints it
                for name, at in sql("SELECT name, migrated_at FROM bioloupe_views.mart")}
    for mart in MARTS:
        row = next(r for r in table.splitlines() if r.startswith(f"{mart} "))
        assert f"built {migrated[mart]}" in row and " migration " in row and "never" not in row


def _run_blocked_on_the_sources(dsn):
    """A refresh-views run whose first mart waits on a lock on every source table."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.conftest import ROOT

    blocker = psycopg2.connect(dsn)
    with blocker.cursor() as cur:
        cur.execute("SELECT string_agg(format('%I.%I', schemaname, tablename), ', ')"
                    " FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'bioloupe_views_alembic_version'")
        cur.execute(f"LOCK TABLE {cur.fetchone()[0]} IN ACCESS EXCLUSIVE MODE")
    run = subprocess.Popen([str(Path(sys.executable).parent / "refresh-views"), "--dsn", dsn,
                            "--threads", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    watcher = psycopg2.connect(dsn)
    watcher.autocommit = True
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with watcher.cursor() as cur:
                cur.execute("SELECT l.run_id::text, l.mart FROM bioloupe_views.run_log l"
                            " JOIN bioloupe_views.run r USING (run_id)"
                            " WHERE r.status = 'running' AND l.status = 'running'")
                found = cur.fetchone()
            if found:
                return blocker, run, found
            time.sleep(0.2)
    finally:
        watcher.close()
    blocker.close()
    run.kill()
    raise AssertionError("the run never started its first mart")


def test_status_during_a_run_shows_it_apart_from_each_marts_last_refresh(dsn, cli, sql):
    assert cli("refresh", dsn=dsn).returncode == 0
    before, before_by_mart = status_json(cli, dsn)
    blocker, run, (run_id, running_mart) = _run_blocked_on_the_sources(dsn)
    try:
        data, by_mart = status_json(cli, dsn)
        table = cli("status", dsn=dsn)
        max_age = cli("status", "--max-age", "10m", dsn=dsn)
    finally:
        blocker.close()
        out, err = run.communicate(timeout=300)
    assert run.returncode == 0, out + err
    assert data["running"]["run_id"] == run_id
    assert data["running"]["marts"]["running"] == [running_mart]
    assert len(data["running"]["marts"]["pending"]) == len(MARTS) - 1
    for mart in MARTS:  # each mart's last refresh is the finished one before this run
        assert by_mart[mart]["last_refresh"] == before_by_mart[mart]["last_refresh"]
        assert by_mart[mart]["last_refresh"]["status"] == "success"
        assert by_mart[mart]["fresh_as_of"] == before_by_mart[mart]["fresh_as_of"]
    assert data["last_run"]["run_id"] == before["last_run"]["run_id"]
    assert table.returncode == 0, table.stderr
    text = table.stdout
    assert "Last refresh not successful" not in text
    assert (f"Running now: run {run_id} (cli, pid {data['running']['pid']}) since "
            in text)
    assert text.rstrip().count(f": {running_mart} running, {len(MARTS) - 1} pending.") == 1
    assert "Last run: success (cli)" in text
    for mart in MARTS:
        row = next(r for r in text.splitlines() if r.startswith(f"{mart} "))
        assert "never" not in row and " success " in row and " cli " in row
    assert max_age.returncode == 0, max_age.stderr  # refreshed seconds before the run
