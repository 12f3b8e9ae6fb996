"""`bioloupe-views demo`: the whole flow on a throwaway server, start to finish.

Start PostgreSQL -> create and fill the sources -> `alembic upgrade head` -> refresh-views
-> print each mart's rows, size and a few sample rows -> stop (or keep, with --keep).

A kept server comes with commands to try that work exactly as printed: the console scripts
by the path they were run from when it is not on PATH (a venv's bin/), the DSN passed with
--dsn, and pg_cron (where it is installed for the server) set up for the demo's database,
so `cron install` works there too.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import click

from .. import engine, migrate, report
from . import synthetic
from ..db import connect
from .pgserver import ThrowawayServer, find_bindir, pg_cron_available
from ..definitions import in_project

DEFAULT_KEEP_DIR = "/tmp/bioloupe-views-demo"
DBNAME = "bioloupe"


def keep_dir() -> Path:
    """Where `--keep` leaves its server, and where `--stop` looks for it: $BIOLOUPE_DEMO_DIR,
    so that the test suite never stops a demo a user left running."""
    return Path(os.environ.get("BIOLOUPE_DEMO_DIR") or DEFAULT_KEEP_DIR)


def _step(text: str) -> None:
    click.echo(click.style(f"==> {text}", bold=True))


def run(scale: float = 1.0, keep: bool = False) -> int:
    kept = keep_dir()
    if keep and (kept / "data" / "postmaster.pid").exists():
        raise SystemExit("Error: a demo server is already running; "
                         "stop it with `bioloupe-views demo --stop`")
    # A kept server outlives this command: no TCP listener (a trusted superuser on loopback
    # would be open to every local user), only the socket in its 0700 data directory.
    cron = pg_cron_available()
    server = ThrowawayServer(datadir=kept / "data" if keep else None, cron=cron,
                             cron_database=DBNAME, tcp=not keep)
    _step("Starting a throwaway PostgreSQL server")
    server.start()
    try:
        dsn = server.create_database(DBNAME)
        _step(f"Creating the source tables and loading synthetic data (scale {scale:g})")
        t0 = time.monotonic()
        conn = connect(dsn)
        synthetic.load(conn, scale)
        click.echo(f"    loaded in {time.monotonic() - t0:.1f}s")
        _step("Running the migrations (alembic upgrade head)")
        migrate.upgrade(dsn)
        _step("Refreshing the marts (refresh-views)")
        outcome = engine.run(dsn, reporter=report.ConsoleReporter(f"demo database {DBNAME}"))
        report.summarize(outcome)
        _step("The marts")
        _summary(conn)
        conn.close()
        if keep:
            (kept / "dsn").write_text(dsn + "\n")
            click.echo(f"\nThe server keeps running. DSN: {dsn}")
            for line in try_lines(dsn, cron):
                click.echo(line)
        return 0 if outcome.ok else 1
    finally:
        if not keep:
            _step("Stopping the server")
            server.stop()


def command(name: str) -> str:
    """How to type console script `name` here: its bare name when PATH finds this one, else
    the path it was installed at (relative to the working directory when under it)."""
    installed = Path(sys.executable).parent / name
    if not installed.exists() or shutil.which(name) == str(installed):
        return name
    relative = os.path.relpath(installed)
    return relative if not relative.startswith("..") else str(installed)


def try_lines(dsn: str, cron: bool) -> list[str]:
    quoted = shlex.quote(dsn)
    cli, refresh = command("bioloupe-views"), command("refresh-views")
    lines = ["Try:",
             f"  {refresh} --dsn {quoted} --select mv_development_programs+",
             f"  {cli} status --dsn {quoted}"]
    if cron:
        lines.append(f"  {cli} cron install --dsn {quoted} --schedule '*/15 * * * *'")
    else:
        lines.append(f"  (pg_cron is absent: not installed for the PostgreSQL in {find_bindir()}, "
                     "so `cron install` cannot run on this demo server)")
    demo_dir = os.environ.get("BIOLOUPE_DEMO_DIR")
    where = f"BIOLOUPE_DEMO_DIR={shlex.quote(demo_dir)} " if demo_dir else ""
    lines.append(f"Stop it with: {where}{cli} demo --stop")
    return lines


def _summary(conn) -> None:
    with conn.cursor() as cur:
        cur.execute(in_project("SELECT mart FROM {project}.refresh_order ORDER BY level, mart"))
        for (mart,) in cur.fetchall():
            cur.execute("SELECT count(*), pg_size_pretty(pg_total_relation_size(%s::regclass))"
                        " FROM public." + _ident(cur, mart), (f"public.{mart}",))
            rows, size = cur.fetchone()
            click.echo(click.style(f"\n{mart}: {rows} rows, {size} with indexes", bold=True))
            cur.execute("SELECT row_to_json(m) FROM public." + _ident(cur, mart) + " m LIMIT 3")
            for (row,) in cur.fetchall():
                text = json.dumps(row, default=str)
                click.echo("    " + (text if len(text) < 160 else text[:157] + "..."))


def _ident(cur, name: str) -> str:
    from psycopg2 import sql

    return sql.Identifier(name).as_string(cur)


def stop() -> None:
    datadir = keep_dir() / "data"
    server = ThrowawayServer(datadir=datadir)
    if not (datadir / "PG_VERSION").exists():
        click.echo("No demo server is running.")
        return
    server.stop(remove=True)
    click.echo("Stopped the demo server and removed its data.")
