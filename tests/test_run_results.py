"""Run results as dbt writes target/run_results.json: always written (default path, --json
PATH, BIOLOUPE_RUN_RESULTS, - for stdout), atomically, whichever way the run ends (success,
failure, the refresh lock held, SIGINT or SIGTERM), in one schema (docs/run-results.md).
And the words of the report: each line says what the summary counts it as, marts apart
from checks, and "Finished" counts only what was refreshed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from bioloupe_views import run_results
from bioloupe_views.dev.pgserver import BIN_VARS
from tests.conftest import MARTS
from tests.test_faults import SLOW, SLOW_SOURCE, SourceLock, waiting_refresh_pid

BIN = Path(sys.executable).parent
SCHEMA_FIELDS = {"metadata", "status", "success", "message", "run_id", "elapsed_seconds", "args",
                 "counts", "lock_holder", "results", "index_rebuilds", "heap_rewrites"}


def _env(dsn: str, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOLOUPE_") or k in BIN_VARS}
    env["BIOLOUPE_DATABASE_URL"] = dsn
    env.update(extra or {})
    return env


def run_in(cwd: Path, dsn: str, *args: str, executable: str = "refresh-views",
           env: dict | None = None) -> subprocess.CompletedProcess:
    """A command run from `cwd`, where the default target/run_results.json is relative to."""
    return subprocess.run([str(BIN / executable), *args], env=_env(dsn, env), cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def default_results(cwd: Path) -> dict:
    return json.loads((cwd / "target" / "run_results.json").read_text())


def runs(sql) -> int:
    return sql("SELECT count(*) FROM bioloupe_views.run")[0][0]


# --- where they go -------------------------------------------------------------------------

def test_results_are_written_by_default_in_target(dsn, tmp_path, sql):
    result = run_in(tmp_path, dsn, "--select", "mv_drug_trials")
    assert result.returncode == 0, result.stdout + result.stderr
    payload = default_results(tmp_path)
    assert set(payload) == SCHEMA_FIELDS
    assert payload["metadata"]["schema_version"] == run_results.SCHEMA_VERSION == 1
    assert payload["metadata"]["command"] == "refresh-views"
    assert (payload["status"], payload["success"], payload["message"]) == ("success", True, None)
    assert payload["run_id"] == sql("SELECT run_id::text FROM bioloupe_views.run")[0][0]
    assert [(r["mart"], r["status"]) for r in payload["results"]] == [("mv_drug_trials", "success")]
    assert payload["counts"]["marts"]["PASS"] == payload["counts"]["marts"]["TOTAL"] == 1
    # The CLI run's trigger_ref is the invocation id: the run log finds this file's run.
    assert sql("SELECT trigger_ref FROM bioloupe_views.run") == [(payload["metadata"]["invocation_id"],)]


def test_the_environment_variable_and_json_choose_the_path(dsn, tmp_path):
    by_env = tmp_path / "env.json"
    result = run_in(tmp_path, dsn, "--select", "mv_drug_trials",
                    env={"BIOLOUPE_RUN_RESULTS": str(by_env)})
    assert result.returncode == 0, result.stderr
    assert json.loads(by_env.read_text())["success"] is True
    assert not (tmp_path / "target").exists()
    by_option = tmp_path / "option.json"
    result = run_in(tmp_path, dsn, "--select", "mv_drug_trials", "--json", str(by_option),
                    env={"BIOLOUPE_RUN_RESULTS": str(by_env)})
    assert result.returncode == 0, result.stderr
    assert json.loads(by_option.read_text())["success"] is True


def test_json_dash_writes_stdout_and_no_file_named_dash(dsn, tmp_path):
    result = run_in(tmp_path, dsn, "--select", "mv_drug_trials", "--json", "-")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metadata"]["schema_version"] == 1
    assert "mv_drug_trials" in result.stderr   # the report for humans
    assert not (tmp_path / "-").exists() and not (tmp_path / "target").exists()


def test_an_unwritable_variable_path_is_refused_before_anything_runs(dsn, tmp_path, sql):
    result = run_in(tmp_path, dsn, env={"BIOLOUPE_RUN_RESULTS": "/nonexistent/d/x.json"})
    assert result.returncode == 2
    assert result.stderr == ("Error: --json /nonexistent/d/x.json: cannot write there (no such "
                             "file or directory); give a writable file path, or - for stdout\n")
    assert runs(sql) == 0


def test_an_unwritable_default_path_warns_and_the_run_goes_on(dsn, tmp_path, sql):
    """A job started where target/ cannot be made still refreshes its marts."""
    (tmp_path / "target").write_text("not a directory")
    result = run_in(tmp_path, dsn, "--select", "mv_drug_trials")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("Warning: run results not written: cannot write "
                                    "target/run_results.json (")
    assert "pass --json PATH or set BIOLOUPE_RUN_RESULTS" in result.stderr
    assert runs(sql) == 1


def test_the_file_is_replaced_atomically(dsn, tmp_path):
    """A new file renamed over the old one (a reader sees one or the other), no leftovers."""
    out = tmp_path / "run.json"
    out.write_text('{"previous": true}\n')
    before = out.stat().st_ino
    result = run_in(tmp_path, dsn, "--select", "mv_drug_trials", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert out.stat().st_ino != before
    assert json.loads(out.read_text())["success"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


# --- every way a run ends --------------------------------------------------------------------

def test_a_failed_run_says_so(dsn, tmp_path):
    result = run_in(tmp_path, dsn, "--select", "mv_drug_trials", "--statement-timeout", "1ms")
    assert result.returncode == 1
    payload = default_results(tmp_path)
    assert (payload["status"], payload["success"]) == ("error", False)
    assert payload["results"][0]["status"] == "error"
    assert payload["counts"]["marts"]["ERROR"] == 1


def test_a_command_error_replaces_the_previous_results(dsn, tmp_path):
    assert run_in(tmp_path, dsn, "--select", "mv_drug_trials").returncode == 0
    result = run_in(tmp_path, dsn.rsplit("/", 1)[0] + "/no_such_database")
    assert result.returncode == 2
    payload = default_results(tmp_path)
    assert (payload["status"], payload["success"], payload["results"]) == ("error", False, [])
    assert "no_such_database" in payload["message"]


def test_a_held_lock_writes_a_skipped_result_naming_the_holder(dsn, tmp_path, sql):
    """Not the previous run's "success": true left in place."""
    assert run_in(tmp_path, dsn, "--select", "mv_drug_trials").returncode == 0
    holder = psycopg2.connect(dsn, application_name="someone-else")
    try:
        holder.cursor().execute("SELECT bioloupe_views.try_refresh_lock()")
        result = run_in(tmp_path, dsn)
        pid = holder.get_backend_pid()
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and f"pid {pid}" in result.stderr
    payload = default_results(tmp_path)
    assert (payload["status"], payload["success"], payload["run_id"]) == ("skipped", False, None)
    assert payload["message"].startswith("skipped: another refresh holds the lock: pid ")
    assert payload["lock_holder"]["pid"] == pid
    assert payload["lock_holder"]["application_name"] == "someone-else"
    assert payload["results"] == [] and runs(sql) == 1


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "SIGINT"),
                                                (signal.SIGTERM, 143, "SIGTERM")],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_writes_what_finished_and_the_rest_cancelled(dsn, tmp_path, sql, signum, code,
                                                              name):
    lock = SourceLock(dsn, SLOW_SOURCE)
    out = tmp_path / "run.json"
    process = subprocess.Popen(
        [str(BIN / "refresh-views"), "--threads", "1", "--json", str(out)], env=_env(dsn),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        waiting_refresh_pid(sql)
        process.send_signal(signum)
        out_text, err = process.communicate(timeout=30)
    finally:
        lock.release()
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, out_text + err
    assert f"stopped by {name}" in err
    payload = json.loads(out.read_text())
    assert (payload["status"], payload["success"]) == ("cancelled", False)
    assert payload["message"] == f"cancelled: stopped by {name}"
    assert payload["run_id"] == sql("SELECT run_id::text FROM bioloupe_views.run")[0][0]
    by_mart = {r["mart"]: r["status"] for r in payload["results"]}
    assert set(by_mart) == set(MARTS) and by_mart[SLOW] == "cancelled"
    logged = dict(sql("SELECT mart, status FROM bioloupe_views.run_log"))
    # What finished before the signal is reported as the run log has it.
    assert {m for m, s in by_mart.items() if s == "success"} == {
        m for m, s in logged.items() if s == "success"}


def test_check_writes_its_results_too(dsn, tmp_path):
    result = run_in(tmp_path, dsn, "check", "--select", "mv_drug_trials",
                    executable="bioloupe-views")
    assert result.returncode == 0, result.stderr
    payload = default_results(tmp_path)
    assert payload["metadata"]["command"] == "check"
    assert payload["metadata"]["schema_version"] == 1
    assert payload["status"] == "success" and payload["results"]
    counts = payload["counts"]["checks"]
    assert counts["TOTAL"] == len(payload["results"])
    assert f"TOTAL={counts['TOTAL']}" in result.stdout


# --- the words and counts of the report -------------------------------------------------------

def _mart_lines(stdout: str) -> dict[str, str]:
    """mart -> the word of its finish line (OK, ERROR, FAIL, SKIP, UNCHANGED)."""
    found = {}
    for line in stdout.splitlines():
        match = re.search(r"\d+ of \d+ (OK|ERROR|FAIL|SKIP|UNCHANGED) (\w+)", line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def test_the_summary_counts_marts_and_checks_apart_and_agrees_with_the_lines(dsn, tmp_path):
    result = run_in(tmp_path, dsn)
    assert result.returncode == 0, result.stderr
    payload = default_results(tmp_path)
    words = _mart_lines(result.stdout)
    assert set(words) == set(MARTS) and set(words.values()) == {"OK"}
    assert "Finished: 5 of 5 marts refreshed in " in result.stdout
    assert "Done. PASS=5 ERROR=0 FAIL=0 SKIP=0 UNCHANGED=0 TOTAL=5 marts" in result.stdout
    checks = [c for r in payload["results"] for c in r["checks"]]
    expected = " ".join(f"{w.upper()}={sum(c['status'] == w for c in checks)}"
                        for w in ("pass", "warn", "fail", "error"))
    assert f"Checks: {expected} TOTAL={len(checks)}" in result.stdout
    assert payload["counts"]["checks"]["TOTAL"] == len(checks) > 5


def test_changed_only_lines_say_unchanged_and_finished_counts_no_refresh(dsn, cli, tmp_path):
    assert cli("track-sources", "--apply", dsn=dsn).returncode == 0
    assert run_in(tmp_path, dsn).returncode == 0
    result = run_in(tmp_path, dsn, "--changed-only")
    assert result.returncode == 0, result.stderr
    assert _mart_lines(result.stdout) == {m: "UNCHANGED" for m in MARTS}
    assert " SKIP " not in result.stdout
    assert "Finished: 0 of 5 marts refreshed, 5 unchanged in " in result.stdout
    assert "Done. PASS=0 ERROR=0 FAIL=0 SKIP=0 UNCHANGED=5 TOTAL=5 marts" in result.stdout
    assert "track-sources" not in result.stdout
    assert default_results(tmp_path)["counts"]["marts"]["UNCHANGED"] == 5


@pytest.mark.parametrize("baseline", [False, True], ids=["first-run", "after-a-refresh"])
def test_changed_only_without_tracking_says_how_to_track_in_one_line(dsn, tmp_path, baseline):
    if baseline:
        assert run_in(tmp_path, dsn).returncode == 0
    result = run_in(tmp_path, dsn, "--changed-only")
    assert result.returncode == 0, result.stderr
    lines = [l for l in result.stdout.splitlines() if "track-sources --apply" in l]
    assert len(lines) == 1, result.stdout
    assert lines[0].endswith("Note: no source is tracked, so --changed-only refreshes every "
                             "mart; run `bioloupe-views track-sources --apply` to track them.")
