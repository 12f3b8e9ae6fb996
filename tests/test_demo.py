"""Issue 2: `bioloupe-views demo` runs the whole flow on its own throwaway server."""

from __future__ import annotations

import uuid
from importlib.metadata import version as importlib_version
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


def test_kept_demo_prints_commands_that_work_exactly_as_printed(cli):
    import os
    import subprocess

    from bioloupe_views.dev.pgserver import pg_cron_available
    from tests.conftest import ROOT

    keep = {"BIOLOUPE_DEMO_DIR": f"/tmp/bioloupe-views-demo-test-{uuid.uuid4().hex[:8]}"}
    result = cli("demo", "--scale", "0.05", "--keep", env=keep, timeout=600)
    lines = result.stdout.splitlines()
    stop = next((l for l in lines if l.startswith("Stop it with: ")), None)
    # As a user's shell runs them: no BIOLOUPE_* variable, the repository as working directory.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOLOUPE_")}

    def shell(command):
        return subprocess.run(["bash", "-c", command], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=300)

    try:
        assert result.returncode == 0, result.stdout + result.stderr
        tries = lines[lines.index("Try:") + 1:lines.index(stop)]
        commands = [l.strip() for l in tries if not l.strip().startswith("(")]
        assert any("refresh-views --dsn " in c for c in commands)
        assert any(" status --dsn " in c for c in commands)
        if pg_cron_available():
            assert any(" cron install --dsn " in c for c in commands)
        else:
            assert any("pg_cron is absent" in l for l in tries)
        for command in commands:
            ran = shell(command)
            assert ran.returncode == 0, (command, ran.stdout + ran.stderr)
    finally:
        stopped = shell(stop.removeprefix("Stop it with: ")) if stop else cli("demo", "--stop",
                                                                            env=keep)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "Stopped the demo server" in stopped.stdout
    assert not Path(keep["BIOLOUPE_DEMO_DIR"]).exists()


def test_every_entry_point_takes_h_and_version(cli):
    from bioloupe_views import cli as cli_module

    version = importlib_version("bioloupe-views")
    commands = [("bioloupe-views", []), ("refresh-views", [])]
    for name, command in cli_module.main.commands.items():
        commands.append(("bioloupe-views", [name]))
        commands += [("bioloupe-views", [name, sub]) for sub in getattr(command, "commands", {})]
    for executable, args in commands:
        helped = cli(*args, "-h", executable=executable)
        assert helped.returncode == 0, (executable, args, helped.stderr)
        assert helped.stdout.startswith("Usage: "), (executable, args)
        shown = cli(*args, "--version", executable=executable)
        assert shown.returncode == 0, (executable, args, shown.stderr)
        assert shown.stdout.strip().endswith(f"version {version}"), (executable, args)
