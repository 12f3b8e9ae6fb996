"""Long work says what it does: `alembic upgrade head` logs each revision and each mart it
builds (rows and seconds) through alembic.ini's logging; `alembic upgrade head --sql` says in
one line why it cannot; `refresh-views --wait` says every few seconds whom it waits for."""

from __future__ import annotations

import re
import time

import psycopg2

from bioloupe_views import definitions


def test_alembic_upgrade_logs_each_revision_and_each_mart_built(sources_dsn, cli):
    result = cli("-x", f"dsn={sources_dsn}", "upgrade", "head", executable="alembic")
    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stderr
    assert re.search(r"^INFO  \[alembic\.runtime\.migration\] Running upgrade  -> 0001, ", log, re.M)
    assert "Running upgrade 0005 -> 0006, " in log
    # One line a step, though Alembic's revision messages span several.
    assert all(line.startswith(("INFO  [alembic.", "created ", "changed ")) for line in
               log.splitlines()), log
    for mart in definitions.marts():
        line = re.search(rf"^created mart {mart} \(version 1\): "
                         r"([\d,]+) rows \(est\.\) in (\d+\.\d\d)s$", log, re.M)
        assert line, (mart, log)
        assert int(line.group(1).replace(",", "")) > 0
    assert "changed schema bioloupe_views from version 5 to 6" in log


def test_alembic_offline_sql_says_why_in_one_line(sources_dsn, cli):
    result = cli("-x", f"dsn={sources_dsn}", "upgrade", "head", "--sql", executable="alembic")
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip()
    assert output.count("\n") == 0, output
    assert output.startswith("FAILED: offline SQL generation (--sql) is not supported: the "
                             "migrations read the database they run on")
    assert "run `alembic upgrade head` against the database" in output


def test_wait_says_every_few_seconds_whom_it_waits_for(dsn, cli):
    holder = psycopg2.connect(dsn, application_name="the-other-refresh")
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT bioloupe_views.try_refresh_lock()")
        started = time.monotonic()
        result = cli("--wait", "7", executable="refresh-views", dsn=dsn)
        took = time.monotonic() - started
        pid = holder.get_backend_pid()
    finally:
        holder.close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert took >= 7
    waiting = [line for line in result.stderr.splitlines()
               if line.startswith("waiting for the refresh lock (")]
    assert len(waiting) >= 2, result.stderr        # at once, then every 5 s
    assert waiting[0].startswith("waiting for the refresh lock (0s of 7s): another refresh "
                                 f"holds the lock: pid {pid} (the-other-refresh)")
    assert all(f"pid {pid}" in line for line in waiting)
