"""Issue 2: `bioloupe-views demo` runs the whole flow on its own throwaway server."""

from __future__ import annotations

from bioloupe_views import catalog


def test_demo_runs_end_to_end_and_stops_its_server(cli):
    result = cli("demo", "--scale", "0.05", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("Starting a throwaway PostgreSQL server", "loading synthetic data",
                 "alembic upgrade head", "Refreshing the marts", "Stopping the server"):
        assert step in out, step
    for mart in catalog.marts():
        assert f"\n{mart}: " in out and " rows, " in out
    assert "Done. PASS=5" in out


def test_demo_keep_leaves_a_server_with_a_dsn_and_stop_stops_it(cli):
    result = cli("demo", "--scale", "0.05", "--keep", timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        dsn = result.stdout.split("DSN: ")[1].split()[0]
        check = cli("check", "--select", "mv_drug_trials", dsn=dsn)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        stopped = cli("demo", "--stop")
    assert stopped.returncode == 0
    assert "Stopped the demo server" in stopped.stdout
    again = cli("check", dsn=dsn)
    assert again.returncode == 2 and "cannot reach PostgreSQL" in again.stderr
