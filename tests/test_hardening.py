"""Security hardening: the pytest plugin fails closed, a kept demo server is not open to every
local user over TCP, and passwords can stay out of argv (libpq's PG* environment and
password file), with a warning when one is on the command line."""

from __future__ import annotations

import os
import shlex
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import ROOT, run_cli

SECRET = "s3cret-" + uuid.uuid4().hex[:8]


def clean_env(**extra) -> dict:
    """The environment of a user with no database settings at all (no BIOLOUPE_*, no PG*)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BIOLOUPE_DB", "BIOLOUPE_DATABASE", "PG"))}
    env["HOME"] = str(extra.pop("HOME", env.get("HOME", "/root")))
    env.update(extra)
    return env


def run(*args, env, executable="bioloupe-views", timeout=300):
    exe = Path(sys.executable).parent / executable
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


# -- the pytest plugin fails closed -------------------------------------------------------

def _plugin(dsn):
    return run_cli("--pyargs", "bioloupe_views.data_checks", f"--bioloupe-dsn={dsn}",
                   "-p", "no:cacheprovider", "-q", "-rf", executable="pytest")


def test_plugin_fails_when_it_cannot_connect_without_showing_the_password():
    result = _plugin(f"postgresql://postgres:{SECRET}@127.0.0.1:1/x")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 failed" in out and "skipped" not in out
    assert "no-database" in out and "cannot reach PostgreSQL" in out
    assert SECRET not in out


def test_plugin_fails_on_a_database_that_was_never_migrated(sources_dsn):
    result = _plugin(sources_dsn)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 failed" in out and "no bioloupe_views schema" in out


def test_plugin_item_can_still_be_deselected():
    result = run_cli("--pyargs", "bioloupe_views.data_checks",
                     "--bioloupe-dsn=postgresql://postgres@127.0.0.1:1/x", "-p", "no:cacheprovider",
                     "-q", "-k", "not no-database", executable="pytest")
    assert result.returncode == 5, result.stdout  # "no tests ran": the user's explicit choice


# -- passwords out of argv -----------------------------------------------------------------

@pytest.fixture
def role(dsn):
    """A login role with a password (roles are cluster-wide: a unique name); a superuser, so
    that only the way it authenticates is under test, not its privileges."""
    name = f"sec_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE ROLE "{name}" SUPERUSER LOGIN PASSWORD %s', (SECRET,))
    yield name
    with conn.cursor() as cur:
        cur.execute(f'DROP OWNED BY "{name}"')
        cur.execute(f'DROP ROLE "{name}"')
    conn.close()


def _passfile(tmp_path, line: str) -> Path:
    path = tmp_path / "pgpass"
    path.write_text(line + "\n")
    path.chmod(0o600)
    return path


def test_a_dsn_without_password_uses_pgpassfile(dsn, role, server, tmp_path):
    db = psycopg2.extensions.parse_dsn(dsn)["dbname"]
    passfile = _passfile(tmp_path, f"127.0.0.1:{server.port}:{db}:{role}:{SECRET}")
    url = f"postgresql://{role}@127.0.0.1:{server.port}/{db}"
    without = run("status", env=clean_env(BIOLOUPE_DATABASE_URL=url, HOME=tmp_path))
    assert without.returncode == 2 and "password" in without.stderr
    result = run("status", env=clean_env(BIOLOUPE_DATABASE_URL=url, PGPASSFILE=str(passfile),
                                         HOME=tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "Warning" not in result.stderr


def test_libpq_environment_alone_is_enough(dsn, role, server, tmp_path):
    db = psycopg2.extensions.parse_dsn(dsn)["dbname"]
    home = tmp_path / "home"
    home.mkdir()
    _passfile(home, f"*:*:*:{role}:{SECRET}").rename(home / ".pgpass")
    env = clean_env(PGHOST="127.0.0.1", PGPORT=str(server.port), PGUSER=role, PGDATABASE=db,
                    HOME=home)
    result = run("status", env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert SECRET not in out
    check = run("check", "--select", "mv_drug_trials", env={**env, "HOME": str(tmp_path)},)
    assert check.returncode == 2 and "password" in check.stderr  # no ~/.pgpass there
    with_password = run("check", "--select", "mv_drug_trials",
                        env={**env, "HOME": str(tmp_path), "PGPASSWORD": SECRET})
    assert with_password.returncode == 0, with_password.stdout + with_password.stderr
    assert SECRET not in with_password.stdout + with_password.stderr


def test_a_password_in_dsn_warns_and_is_masked(dsn, role, server, tmp_path):
    db = psycopg2.extensions.parse_dsn(dsn)["dbname"]
    url = f"postgresql://{role}:{SECRET}@127.0.0.1:{server.port}/{db}"
    result = run("status", "--dsn", url, env=clean_env(HOME=tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning: a password in --dsn is visible to other users in ps" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    wrong = run("status", "--dsn", url.replace(SECRET, SECRET + "x"), env=clean_env(HOME=tmp_path))
    assert wrong.returncode == 2
    assert "Warning: a password in --dsn" in wrong.stderr and SECRET not in wrong.stderr
    quiet = run("status", env=clean_env(BIOLOUPE_DATABASE_URL=url, HOME=tmp_path))
    assert quiet.returncode == 0 and "Warning" not in quiet.stderr  # the environment is fine


def test_a_password_in_alembic_x_dsn_warns(dsn, tmp_path):
    url = dsn.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    result = run("-x", f"dsn={url}", "current", env=clean_env(HOME=tmp_path), executable="alembic")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning: a password in -x dsn is visible" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_nothing_configured_is_one_clear_line(tmp_path):
    result = run("status", env=clean_env(HOME=tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for var in ("BIOLOUPE_DATABASE_URL", "--dsn", "BIOLOUPE_DB_HOST", "PGHOST"):
        assert var in lines[0]


# -- demo --keep ---------------------------------------------------------------------------

def test_kept_demo_server_refuses_tcp_and_its_dsn_works(cli):
    keep = {"BIOLOUPE_DEMO_DIR": f"/tmp/bioloupe-views-demo-sec-{uuid.uuid4().hex[:8]}"}
    result = cli("demo", "--scale", "0.02", "--keep", env=keep, timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        dsn = result.stdout.split("DSN: ")[1].split()[0]
        port = int(psycopg2.extensions.parse_dsn(dsn)["port"])
        datadir = Path(keep["BIOLOUPE_DEMO_DIR"]) / "data"
        assert stat.S_IMODE(datadir.stat().st_mode) & 0o077 == 0
        # No superuser over TCP without a password (nothing listens on TCP at all).
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             connect_timeout=5)
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
        # The printed DSN works for the user who ran the demo.
        check = cli("check", "--select", "mv_drug_trials", dsn=dsn)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"--dsn {shlex.quote(dsn)}" in result.stdout   # the demo's Try: lines
    finally:
        stopped = cli("demo", "--stop", env=keep)
    assert stopped.returncode == 0 and "Stopped the demo server" in stopped.stdout
