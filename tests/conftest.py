"""Shared fixtures: one throwaway PostgreSQL server for the session (Debian's 15, or the
binaries in $BIOLOUPE_PG_BIN; with pg_cron preloaded where it is installed), and
pytest-postgresql template databases cloned per test.

- `dsn`: a fresh database with synthetic sources, migrated to head and refreshed.
- `sources_dsn`: a fresh database with synthetic sources only (no migrations).
- `server`: the ThrowawayServer, for tests that need another database or role.

Tests marked `pg_cron` need pg_cron on the server: they are skipped where it is not installed
(`scripts/dev.sh test` deselects them there with -m 'not pg_cron').

The data scale is BIOLOUPE_TEST_SCALE (default 0.2, i.e. ~1/300 of production); every edge
case of the source contract is present at any scale.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from pytest_postgresql import factories

from bioloupe_views import checks, definitions, migrate
from bioloupe_views.dev import synthetic
from bioloupe_views.dev.pgserver import (BIN_VARS, ThrowawayServer, free_port, pg_cron_available,
                                         server_version)

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_SQL = Path(__file__).parent / "reference"
MARTS = list(definitions.marts())
TEST_SCALE = float(os.environ.get("BIOLOUPE_TEST_SCALE", "0.2"))
PORT = free_port()
_SERVER = ThrowawayServer(port=PORT, cron=pg_cron_available())


def pytest_report_header(config):
    cron = "with pg_cron" if _SERVER.cron else "no pg_cron"
    return f"PostgreSQL {server_version(_SERVER.bindir)} ({_SERVER.bindir}, {cron})"


def pytest_collection_modifyitems(config, items):
    if _SERVER.cron:
        return
    skip = pytest.mark.skip(reason=f"pg_cron is not installed for the PostgreSQL in {_SERVER.bindir}")
    for item in items:
        if item.get_closest_marker("pg_cron"):
            item.add_marker(skip)


def pytest_sessionstart(session):
    _SERVER.start()
    atexit.register(_SERVER.stop)
    # A killed run (CI timeout, a wrapper's Ctrl-C) must not leave the server behind, and must
    # end: an exception raised here (SystemExit, even KeyboardInterrupt) can land inside a test
    # that swallows it, and the session then goes on, waiting on a server that is gone.
    signal.signal(signal.SIGTERM, _terminated)


def _terminated(*_):
    _SERVER.stop()
    os._exit(143)


def pytest_sessionfinish(session, exitstatus):
    _SERVER.stop()


def _dsn(dbname: str, user: str = "postgres") -> str:
    return f"postgresql://{user}@127.0.0.1:{PORT}/{dbname}"


def _load_sources(host, port, user, dbname, password=None, **_):
    conn = psycopg2.connect(_dsn(dbname))
    conn.autocommit = True
    synthetic.load(conn, TEST_SCALE)
    conn.close()


def _load_migrated(host, port, user, dbname, password=None, **_):
    _load_sources(host, port, user, dbname)
    migrate.upgrade(_dsn(dbname))


postgresql_migrated_proc = factories.postgresql_noproc(
    host="127.0.0.1", port=PORT, user="postgres", dbname="bioloupe_migrated", load=[_load_migrated])
postgresql_sources_proc = factories.postgresql_noproc(
    host="127.0.0.1", port=PORT, user="postgres", dbname="bioloupe_sources", load=[_load_sources])
migrated_db = factories.postgresql("postgresql_migrated_proc")
sources_db = factories.postgresql("postgresql_sources_proc")


@pytest.fixture
def server() -> ThrowawayServer:
    return _SERVER


@pytest.fixture
def dsn(migrated_db) -> str:
    """A fresh, migrated and populated database of its own for this test."""
    return _dsn(migrated_db.info.dbname)


@pytest.fixture
def sources_dsn(sources_db) -> str:
    """A fresh database with the synthetic sources and nothing of ours."""
    return _dsn(sources_db.info.dbname)


def _sql_runner(dsn):
    """A function that runs SQL on `dsn` (autocommit) and returns all rows, or None; and
    its connection, to close."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True

    def run(statement, params=None):
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None

    return run, conn


@pytest.fixture
def sql(dsn):
    """Run SQL in the test database (autocommit); returns all rows, or None."""
    run, conn = _sql_runner(dsn)
    yield run
    conn.close()


@pytest.fixture
def sources_sql(sources_dsn):
    """The same, in the `sources_dsn` database."""
    run, conn = _sql_runner(sources_dsn)
    yield run
    conn.close()


def run_cli(*args, env=None, dsn=None, timeout=600, executable="bioloupe-views"):
    """Run a console script as a user would; returns CompletedProcess (text)."""
    # The server binaries stay: a command that starts its own server (demo) uses the same major.
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BIOLOUPE_") or k in BIN_VARS}
    if dsn:
        full_env["BIOLOUPE_DATABASE_URL"] = dsn
    full_env.update(env or {})
    exe = Path(sys.executable).parent / executable
    return subprocess.run([str(exe), *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture
def cli():
    return run_cli


def add_check(dsn: str, mart: str, name: str, query: str, severity: str = "error") -> None:
    """Install one more check on `mart`, as a migration would (a view and its registry row)."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM bioloupe_views.mart WHERE name = %s", (mart,))
        checks.add(cur, checks.Check(name, mart, "singular", severity, query), cur.fetchone()[0])
    conn.close()


def remove_check(dsn: str, name: str) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        checks.remove(cur, name)
    conn.close()


def reinstall_checks(dsn: str, mart: str) -> None:
    """Put back a mart's checks after a test rebuilt the mart by hand (DROP ... CASCADE takes
    its check views with it), as the migration that creates a mart installs them."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM bioloupe_views.mart WHERE name = %s", (mart,))
        checks.install(cur, definitions.get(mart).version(cur.fetchone()[0]))
    conn.close()


def _build_reference(conn) -> None:
    """The seed's SQL as temp tables ref_<mart>; dependents read ref_mv_development_programs."""
    with conn.cursor() as cur:
        for mart in ["mv_development_programs", *[m for m in MARTS if m != "mv_development_programs"]]:
            cur.execute(f"DROP TABLE IF EXISTS ref_{mart}")
            cur.execute(f"CREATE TEMP TABLE ref_{mart} AS {(REFERENCE_SQL / f'{mart}.sql').read_text()}")


def _columns(conn, relation: str) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                    " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
                    " ORDER BY attnum", (relation,))
        return cur.fetchall()


def _differences(conn, mart: str) -> tuple[int, int, int]:
    """(rows in the mart not in the reference, the reverse, reference size), as multisets."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT (SELECT count(*) FROM (SELECT * FROM public.{mart} EXCEPT ALL"
                    f" SELECT * FROM ref_{mart}) a), (SELECT count(*) FROM (SELECT * FROM ref_{mart}"
                    f" EXCEPT ALL SELECT * FROM public.{mart}) b), (SELECT count(*) FROM ref_{mart})")
        return cur.fetchone()


def assert_equal_to_seed(conn) -> None:
    """Every mart equals the seed's SQL (tests/reference/) on the same sources, row for row."""
    _build_reference(conn)
    for mart in MARTS:
        assert _columns(conn, f"public.{mart}") == _columns(conn, f"ref_{mart}"), mart
        extra, missing, total = _differences(conn, mart)
        assert (extra, missing) == (0, 0), f"{mart}: {extra} extra rows, {missing} missing rows"
        assert total > 0, f"{mart}: the reference is empty, the comparison proves nothing"
