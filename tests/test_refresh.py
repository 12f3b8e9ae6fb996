"""Issue 3: refresh-views — order, modes, audit before publish, parallelism, selection,
the lock, timeouts, readers never blocked, the run log and the JSON results."""

from __future__ import annotations

import json
import threading
import time

import psycopg2
import pytest

from bioloupe_views import mart_graph as graph, selection
from tests.conftest import add_check, remove_check

UPSTREAM = "mv_development_programs"
DEPENDENTS = ("mv_competitive_landscape", "mv_drug_pipeline")


def fingerprint(sql, mart):
    return sql(f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
               f" FROM public.{mart} t")[0]


def run_log(sql, run_id=None):
    """The marts that finished (the run log also queues the ones to come), as they ended."""
    rows = sql("SELECT mart, status, mode, rows, error, trigger, started_at, ended_at,"
               " duration_seconds, run_id::text FROM bioloupe_views.run_log"
               " WHERE status NOT IN ('pending', 'running')"
               + (" AND run_id = %s" if run_id else "") + " ORDER BY ended_at, id",
               (run_id,) if run_id else None)
    return [dict(zip(("mart", "status", "mode", "rows", "error", "trigger", "started_at",
                      "ended_at", "duration", "run_id"), r)) for r in rows]


def results(path):
    data = json.loads(path.read_text())
    return data, {r["mart"]: r for r in data["results"]}


class HeldLock:
    """Another session holding a lock (or the refresh lock) until released."""

    def __init__(self, dsn, statement):
        self.conn = psycopg2.connect(dsn)
        self.conn.cursor().execute(statement)

    def release(self):
        self.conn.rollback()
        self.conn.close()


# --- order -------------------------------------------------------------------------------

def test_order_comes_from_the_catalog_and_is_respected(dsn, cli, sql, tmp_path):
    out = tmp_path / "run.json"
    result = cli("refresh", "--threads", "4", "--json", str(out), dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    data, by_mart = results(out)
    log = {r["mart"]: r for r in run_log(sql, data["run_id"])}
    assert set(log) == {"mv_development_programs", "mv_drug_trials", "mv_efficacy_evidence",
                        *DEPENDENTS}
    for dependent in DEPENDENTS:
        assert log[dependent]["started_at"] >= log[UPSTREAM]["ended_at"]
    assert sql("SELECT mart, depends_on FROM bioloupe_views.mart_dependency ORDER BY 1") == [
        ("mv_competitive_landscape", UPSTREAM), ("mv_drug_pipeline", UPSTREAM)]


def test_a_mart_added_later_is_ordered_through_a_plain_view_without_code_change(dsn, cli, sql):
    # What a later migration would do: a plain view on a mart, and a new mart reading it.
    sql("CREATE VIEW public.v_landscape_by_disease AS SELECT disease_id, count(*) AS n"
        " FROM public.mv_competitive_landscape GROUP BY disease_id")
    sql("CREATE MATERIALIZED VIEW public.mv_disease_counts AS SELECT * FROM"
        " public.v_landscape_by_disease")
    sql("CREATE UNIQUE INDEX ON public.mv_disease_counts (disease_id)")
    sql("INSERT INTO bioloupe_views.mart (name, version) VALUES ('mv_disease_counts', 1)")
    conn = psycopg2.connect(dsn)
    g = graph.load(conn)
    conn.close()
    assert g.upstream["mv_disease_counts"] == {"mv_competitive_landscape"}
    assert g.order.index("mv_disease_counts") > g.order.index("mv_competitive_landscape")
    assert g.levels["mv_disease_counts"] == 2
    result = cli("refresh", "--select", "mv_development_programs+", dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    log = {r["mart"]: r for r in run_log(sql)}
    assert log["mv_disease_counts"]["status"] == "success"
    assert log["mv_disease_counts"]["started_at"] >= log["mv_competitive_landscape"]["ended_at"]


# --- modes -------------------------------------------------------------------------------

def test_concurrent_by_default_and_plain_on_request(dsn, cli, sql, tmp_path):
    assert cli("refresh", dsn=dsn).returncode == 0
    assert {r["mode"] for r in run_log(sql)} == {"concurrent"}
    sql("TRUNCATE bioloupe_views.run_log")
    assert cli("refresh", "--no-concurrently", dsn=dsn).returncode == 0
    assert {r["mode"] for r in run_log(sql)} == {"plain"}


def test_an_unpopulated_mart_gets_a_plain_refresh_and_the_output_says_so(dsn, cli, sql):
    sql("REFRESH MATERIALIZED VIEW public.mv_drug_trials WITH NO DATA")
    result = cli("refresh", "--select", "mv_drug_trials", dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mv_drug_trials (unpopulated: plain refresh)" in result.stdout
    assert run_log(sql)[0]["mode"] == "plain"
    assert sql("SELECT ispopulated FROM pg_matviews WHERE matviewname = 'mv_drug_trials'") == [(True,)]


def test_statistics_are_current_after_a_refresh(dsn, cli, sql):
    before = sql("SELECT coalesce(analyze_count, 0) + coalesce(autoanalyze_count, 0)"
                 " FROM pg_stat_user_tables WHERE relname = 'mv_drug_pipeline'")[0][0]
    sql("DELETE FROM drugs WHERE id IN (SELECT id FROM drugs ORDER BY id LIMIT 50)")
    assert cli("refresh", "--select", "+mv_drug_pipeline", dsn=dsn).returncode == 0
    estimated = sql("SELECT reltuples FROM pg_class WHERE oid = 'public.mv_drug_pipeline'::regclass")[0][0]
    actual = sql("SELECT count(*) FROM public.mv_drug_pipeline")[0][0]
    assert estimated == actual
    time.sleep(0.6)  # pg_stat is reported by the backend at its next idle moment
    after = sql("SELECT coalesce(analyze_count, 0) + coalesce(autoanalyze_count, 0)"
                " FROM pg_stat_user_tables WHERE relname = 'mv_drug_pipeline'")[0][0]
    assert after > before


# --- audit before publish ----------------------------------------------------------------

def _add_canary_check(dsn):
    """A check that fails once a drug named CANARY reaches mv_development_programs."""
    add_check(dsn, "mv_development_programs", "assert_no_canary",
              "SELECT drug_id FROM public.mv_development_programs WHERE drug_name = 'CANARY'")


def _add_canary_program(sql):
    """A new drug with an approval for an existing disease: one new development program."""
    sql("INSERT INTO drugs (id, name) VALUES (999999001, 'CANARY')")
    sql("INSERT INTO drug_approvals (id, drug_id, approval_status) VALUES (999999001, 999999001, 'approved')")
    sql("INSERT INTO indications (id, drug_approval_id, disease_id)"
        " SELECT 999999001, 999999001, min(id) FROM diseases")


def test_a_failing_check_rolls_back_and_skips_dependents(dsn, cli, sql, tmp_path):
    _add_canary_check(dsn)
    _add_canary_program(sql)
    before = {m: fingerprint(sql, m) for m in (UPSTREAM, *DEPENDENTS)}
    out = tmp_path / "run.json"
    result = cli("refresh", "--json", str(out), dsn=dsn)
    assert result.returncode == 1
    assert "FAIL mv_development_programs" in result.stdout
    assert "assert_no_canary" in result.stdout
    data, by_mart = results(out)
    assert by_mart[UPSTREAM]["status"] == "check_failed"
    failed = [c for c in by_mart[UPSTREAM]["checks"] if c["name"] == "assert_no_canary"]
    assert failed[0]["status"] == "fail" and failed[0]["failures"] == 1
    for dependent in DEPENDENTS:
        assert by_mart[dependent]["status"] == "skipped"
    for independent in ("mv_drug_trials", "mv_efficacy_evidence"):
        assert by_mart[independent]["status"] == "success"
    # Readers still see the last good data.
    for mart, print_ in before.items():
        assert fingerprint(sql, mart) == print_, mart
    statuses = {r["mart"]: r["status"] for r in run_log(sql, data["run_id"])}
    assert statuses[UPSTREAM] == "check_failed"
    assert statuses["mv_drug_pipeline"] == "skipped"


def test_no_check_publishes_without_auditing(dsn, cli, sql):
    _add_canary_check(dsn)
    _add_canary_program(sql)
    result = cli("refresh", "--no-check", "--select", UPSTREAM, dsn=dsn)
    assert result.returncode == 0, result.stdout
    assert sql("SELECT count(*) FROM mv_development_programs WHERE drug_name = 'CANARY'") == [(1,)]


def test_atomic_changes_all_marts_or_none(dsn, cli, sql, tmp_path):
    _add_canary_program(sql)
    # A failing check on the last mart in the order: with --atomic nothing is published.
    add_check(dsn, "mv_drug_pipeline", "assert_pipeline_has_no_canary",
              "SELECT drug_id FROM public.mv_drug_pipeline WHERE drug_name = 'CANARY'")
    before = {m: fingerprint(sql, m) for m in (UPSTREAM, "mv_drug_pipeline")}
    out = tmp_path / "run.json"
    result = cli("refresh", "--atomic", "--json", str(out), dsn=dsn)
    assert result.returncode == 1
    _, by_mart = results(out)
    assert by_mart["mv_drug_pipeline"]["status"] == "check_failed"
    assert by_mart[UPSTREAM]["status"] == "skipped"
    assert "rolled back" in by_mart[UPSTREAM]["error"]
    for mart, print_ in before.items():
        assert fingerprint(sql, mart) == print_, mart
    # Without the failing check, --atomic publishes everything.
    remove_check(dsn, "assert_pipeline_has_no_canary")
    assert cli("refresh", "--atomic", dsn=dsn).returncode == 0
    assert sql("SELECT count(*) FROM mv_drug_pipeline WHERE drug_name = 'CANARY'") == [(1,)]
    assert sql("SELECT count(*) FROM mv_development_programs WHERE drug_name = 'CANARY'") == [(1,)]


# --- parallelism and selection -----------------------------------------------------------

def test_independent_marts_refresh_in_parallel(dsn, cli, sql):
    # mv_efficacy_evidence waits on a lock on a source only it reads; with threads the rest
    # finish meanwhile.
    held = HeldLock(dsn, "BEGIN; LOCK TABLE trial_arm_results IN ACCESS EXCLUSIVE MODE")
    proc_result = {}

    def run():
        proc_result["r"] = cli("refresh", "--threads", "4", dsn=dsn)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = {r["mart"] for r in run_log(sql)}
        if {UPSTREAM, *DEPENDENTS, "mv_drug_trials"} <= done:
            break
        time.sleep(0.2)
    finished_while_blocked = {r["mart"] for r in run_log(sql)}
    held.release()
    thread.join(60)
    assert proc_result["r"].returncode == 0, proc_result["r"].stdout
    assert {UPSTREAM, *DEPENDENTS, "mv_drug_trials"} <= finished_while_blocked
    assert "mv_efficacy_evidence" not in finished_while_blocked


@pytest.mark.parametrize("args, expected", [
    (("--select", "mv_development_programs+"), {UPSTREAM, *DEPENDENTS}),
    (("--select", "+mv_drug_pipeline"), {UPSTREAM, "mv_drug_pipeline"}),
    (("--select", "mv_drug_trials", "--select", "mv_efficacy_evidence"),
     {"mv_drug_trials", "mv_efficacy_evidence"}),
    (("--exclude", "mv_development_programs+"), {"mv_drug_trials", "mv_efficacy_evidence"}),
    (("--select", "mv_development_programs+", "--exclude", "mv_drug_pipeline"),
     {UPSTREAM, "mv_competitive_landscape"}),
])
def test_select_and_exclude(dsn, cli, sql, args, expected):
    result = cli("refresh", *args, dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {r["mart"] for r in run_log(sql)} == expected


def test_unknown_view_is_a_usage_error_listing_the_valid_names(dsn, cli, sql):
    result = cli("refresh", "--select", "mv_nope+", dsn=dsn)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "unknown mart 'mv_nope'" in result.stderr
    assert "mv_drug_pipeline" in result.stderr
    assert run_log(sql) == []


def test_selection_operators_on_a_graph():
    order = ["a", "b", "c", "d"]
    upstream = {"a": set(), "b": {"a"}, "c": {"b"}, "d": set()}
    assert selection.select(order, upstream, ("b+",)) == ["b", "c"]
    assert selection.select(order, upstream, ("+b",)) == ["a", "b"]
    assert selection.select(order, upstream, ("+b+",)) == ["a", "b", "c"]
    assert selection.select(order, upstream, ("a+ d",), ("c",)) == ["a", "b", "d"]
    assert selection.select(order, upstream) == order


# --- safety ------------------------------------------------------------------------------

def test_a_second_run_is_refused_while_the_lock_is_held(dsn, cli, sql):
    held = HeldLock(dsn, "SELECT bioloupe_views.try_refresh_lock()")
    try:
        result = cli("refresh", dsn=dsn)
        assert result.returncode == 1
        assert "another refresh holds the lock" in result.stderr
        assert f"pid {held.conn.get_backend_pid()}" in result.stderr
        assert "--wait" in result.stderr
        assert result.stderr.count("\n") == 1
        t0 = time.monotonic()
        waited = cli("refresh", "--wait", "1", dsn=dsn)
        assert waited.returncode == 1 and time.monotonic() - t0 >= 1
        assert run_log(sql) == []
    finally:
        held.release()


def test_wait_takes_the_lock_once_it_is_released(dsn, cli, sql):
    held = HeldLock(dsn, "SELECT bioloupe_views.try_refresh_lock()")
    timer = threading.Timer(1.5, held.release)
    timer.start()
    result = cli("refresh", "--wait", "30", dsn=dsn)
    timer.join()
    assert result.returncode == 0, result.stderr
    assert len(run_log(sql)) == 5


def test_statement_timeout_fails_the_view_rolls_back_and_skips_dependents(dsn, cli, sql, tmp_path):
    _add_canary_program(sql)
    before = fingerprint(sql, UPSTREAM)
    out = tmp_path / "run.json"
    result = cli("refresh", "--statement-timeout", "1ms", "--json", str(out), dsn=dsn)
    assert result.returncode == 1
    _, by_mart = results(out)
    assert by_mart[UPSTREAM]["status"] == "error"
    assert "statement timeout" in by_mart[UPSTREAM]["error"]
    assert {by_mart[d]["status"] for d in DEPENDENTS} == {"skipped"}
    assert fingerprint(sql, UPSTREAM) == before
    assert "statement timeout" in {r["mart"]: r for r in run_log(sql)}[UPSTREAM]["error"]
    # The next run without the timeout succeeds.
    assert cli("refresh", dsn=dsn).returncode == 0
    assert sql("SELECT count(*) FROM mv_development_programs WHERE drug_name = 'CANARY'") == [(1,)]


def test_lock_timeout_fails_only_the_locked_view(dsn, cli, sql, tmp_path):
    held = HeldLock(dsn, "BEGIN; LOCK TABLE trial_arm_results IN ACCESS EXCLUSIVE MODE")
    try:
        out = tmp_path / "run.json"
        result = cli("refresh", "--lock-timeout", "200ms", "--json", str(out), dsn=dsn)
    finally:
        held.release()
    assert result.returncode == 1
    _, by_mart = results(out)
    assert by_mart["mv_efficacy_evidence"]["status"] == "error"
    assert "lock timeout" in by_mart["mv_efficacy_evidence"]["error"]
    others = {m: r["status"] for m, r in by_mart.items() if m != "mv_efficacy_evidence"}
    assert set(others.values()) == {"success"}


def _reader_loop(dsn, stop, outcome):
    """Read a mart continuously; a read that must wait on a lock fails fast (lock_timeout)."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET lock_timeout = '100ms'")
    outcome["pid"] = conn.get_backend_pid()
    while not stop.is_set():
        try:
            cur.execute("SELECT count(*), max(highest_phase_rank) FROM public.mv_development_programs")
            cur.fetchone()
            outcome["reads"] += 1
        except psycopg2.Error as exc:
            outcome["errors"].append(str(exc).splitlines()[0])
    conn.close()


def _watch_lock_waits(dsn, stop, outcome):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    while not stop.is_set():
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
                    (outcome.get("pid", -1),))
        outcome["lock_waits"] += cur.fetchone()[0]
        time.sleep(0.005)
    conn.close()


def _read_during_refreshes(dsn, cli, args, runs=3):
    outcome = {"reads": 0, "errors": [], "lock_waits": 0}
    stop = threading.Event()
    threads = [threading.Thread(target=_reader_loop, args=(dsn, stop, outcome)),
               threading.Thread(target=_watch_lock_waits, args=(dsn, stop, outcome))]
    for t in threads:
        t.start()
    try:
        for _ in range(runs):
            assert cli("refresh", "--select", UPSTREAM, *args, dsn=dsn).returncode == 0
    finally:
        stop.set()
        for t in threads:
            t.join()
    return outcome


def test_readers_are_never_blocked_by_a_concurrent_refresh(dsn, cli):
    outcome = _read_during_refreshes(dsn, cli, ())
    assert outcome["reads"] > 50
    assert outcome["errors"] == []
    assert outcome["lock_waits"] == 0


def test_the_reader_probe_does_detect_blocking(dsn, cli, sql):
    """Control: a plain refresh (ACCESS EXCLUSIVE) must show up as errors or lock waits,
    or the test above proves nothing. The source is made slow to read so the refresh holds
    its lock long enough to be seen."""
    sql("ALTER TABLE clinical_trials ADD COLUMN pad text")
    sql("UPDATE clinical_trials SET pad = repeat('x', 2000)")
    outcome = _read_during_refreshes(dsn, cli, ("--no-concurrently",), runs=5)
    assert outcome["errors"] or outcome["lock_waits"]


# --- record and report -------------------------------------------------------------------

def test_run_log_and_json_results(dsn, cli, sql, tmp_path):
    out = tmp_path / "run.json"
    result = cli("refresh", "--json", str(out), dsn=dsn)
    assert result.returncode == 0
    data, by_mart = results(out)
    assert data["success"] is True and len(data["results"]) == 5
    log = run_log(sql, data["run_id"])
    assert len(log) == 5
    for row in log:
        r = by_mart[row["mart"]]
        assert row["status"] == r["status"] == "success"
        assert row["mode"] == r["mode"] == "concurrent"
        assert row["rows"] == r["rows"] == sql(f"SELECT count(*) FROM public.{row['mart']}")[0][0]
        assert row["trigger"] == "cli"
        assert row["ended_at"] >= row["started_at"] and row["duration"] is not None
        assert r["seconds"] >= 0 and r["checks"] and all(c["status"] in ("pass", "warn") for c in r["checks"])
    assert sql("SELECT status, trigger FROM bioloupe_views.run WHERE run_id = %s",
               (data["run_id"],)) == [("success", "cli")]
    # dbt-like lines: one per mart as it starts and as it finishes, and a summary.
    assert result.stdout.count(" START refresh ") == 5
    assert result.stdout.count(" OK ") == 5
    assert "Done. PASS=5" in result.stdout


def test_refresh_views_is_the_same_command(dsn, cli, sql):
    result = cli("--select", "mv_drug_trials", dsn=dsn, executable="refresh-views")
    assert result.returncode == 0, result.stderr
    assert [r["mart"] for r in run_log(sql)] == ["mv_drug_trials"]


def test_a_database_without_migrations_is_told_to_run_them(sources_dsn, cli):
    result = cli("refresh", dsn=sources_dsn)
    assert result.returncode == 2
    assert "run `alembic upgrade head` first" in result.stderr
    assert "Traceback" not in result.stderr
