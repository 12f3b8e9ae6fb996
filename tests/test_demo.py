"""Issue 2: `bioloupe-views demo` runs the whole flow on its own throwaway server."""

from __future__ import annotations

import uuid
from pathlib import Path

from bioloupe_views import definitions
from bioloupe_views.dev.demo import DEFAULT_KEEP_DIR


def test_demo_runs_end_to_end_and_stops_its_server(cli):
    result = cli("demo", "--scale", "0.05", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("Starting a throwaway PostgreSQL server", "loading synthetic data",
                 "alembic upgrade head", "Refreshing the marts", "Stopping the server"):
        assert step in out, step
    for mart in definitions.marts():
        assert f"\n{mart}: " in out and " rows, " in out
    assert "Done. PASS=5" in out


def test_demo_keep_leaves_a_server_with_a_dsn_and_stop_stops_it(cli):
    # A directory of its own: a demo the developer left running (in the default directory)
    # must survive the test suite.
    keep = {"BIOLOUPE_DEMO_DIR": f"/tmp/bioloupe-views-demo-test-{uuid.uuid4().hex[:8]}"}
    users_demo = Path(DEFAULT_KEEP_DIR) / "data" / "postmaster.pid"
    users_demo_before = users_demo.exists()
    result = cli("demo", "--scale", "0.05", "--keep", env=keep, timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        dsn = result.stdout.split("DSN: ")[1].split()[0]
        assert (Path(keep["BIOLOUPE_DEMO_DIR"]) / "dsn").read_text().strip() == dsn
        check = cli("check", "--select", "mv_drug_trials", dsn=dsn)
        assert check.returncode == 0, check.stdout + check.stderr
        busy = cli("demo", "--keep", env=keep)
        assert busy.returncode != 0 and "already running" in busy.stderr
    finally:
        stopped = cli("demo", "--stop", env=keep)
    assert stopped.returncode == 0
    assert "Stopped the demo server" in stopped.stdout
    assert not Path(keep["BIOLOUPE_DEMO_DIR"]).exists()
    assert users_demo.exists() == users_demo_before
    again = cli("check", dsn=dsn)
    assert again.returncode == 2 and "cannot reach PostgreSQL" in again.stderr
