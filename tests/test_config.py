"""Issue 2: one DSN resolution for Alembic and the CLI; passwords never shown."""

from __future__ import annotations

import itertools
import uuid

import psycopg2
import pytest

from bioloupe_views.config import describe, mask_dsn, mask_text, resolve_dsn
from bioloupe_views.errors import ConfigError

PARTS = {"BIOLOUPE_DB_HOST": "db.internal", "BIOLOUPE_DB_USER": "etl",
         "BIOLOUPE_DB_PASSWORD": "p@ss:w/rd", "BIOLOUPE_DB_NAME": "bioloupe"}


def test_the_url_wins_over_the_profile_variables():
    env = {**PARTS, "BIOLOUPE_DATABASE_URL": "postgresql://u@h:1/d"}
    assert resolve_dsn(None, env) == "postgresql://u@h:1/d"


def test_an_explicit_dsn_wins_over_everything():
    env = {**PARTS, "BIOLOUPE_DATABASE_URL": "postgresql://u@h:1/d"}
    assert resolve_dsn("postgresql://x@y:2/z", env) == "postgresql://x@y:2/z"


def test_profile_variables_build_a_url_with_default_port_and_quoted_password():
    dsn = resolve_dsn(None, PARTS)
    assert dsn == "postgresql://etl:p%40ss%3Aw%2Frd@db.internal:5432/bioloupe"
    assert resolve_dsn(None, {**PARTS, "BIOLOUPE_DB_PORT": "6543"}).endswith(":6543/bioloupe")


def test_missing_settings_name_each_missing_variable():
    with pytest.raises(ConfigError) as err:
        resolve_dsn(None, {"BIOLOUPE_DB_HOST": "h"})
    message = str(err.value)
    assert "BIOLOUPE_DB_USER" in message and "BIOLOUPE_DB_NAME" in message
    assert "BIOLOUPE_DB_HOST" not in message.split("set ")[-1]
    assert "\n" not in message


def test_a_bad_port_is_named():
    with pytest.raises(ConfigError, match="BIOLOUPE_DB_PORT"):
        resolve_dsn(None, {**PARTS, "BIOLOUPE_DB_PORT": "five"})


def test_a_malformed_dsn_is_rejected_without_echoing_the_password():
    for bad in ("host=h password=hunter2 nonsense", "host=h password=hunter2 port=",
                "postgresql://u:hunter2@h:port/d"):
        with pytest.raises(ConfigError) as err:
            resolve_dsn(bad, {})
        assert "hunter2" not in str(err.value)
        assert "malformed DSN" in str(err.value)


def test_masking_covers_url_and_key_value_forms():
    assert mask_dsn("postgresql://etl:secret@h/d") == "postgresql://etl:***@h/d"
    assert "secret" not in mask_dsn("host=h password=secret dbname=d")
    assert mask_dsn("postgresql://etl@h/d?sslmode=require&password=secret&x=1") == (
        "postgresql://etl@h/d?sslmode=require&password=***&x=1")
    assert mask_dsn("host=h password='se cr\\'et' sslpassword=key dbname=d") == (
        "host=h password=*** sslpassword=*** dbname=d")
    dsn = resolve_dsn(None, PARTS)
    # libpq's DSN parser quotes the value it rejects: the password, raw or decoded.
    masked = mask_text('failed for "p@ss:w/rd" and "p%40ss%3Aw%2Frd"', dsn)
    assert masked == 'failed for "***" and "***"'
    assert describe(dsn) == "etl@db.internal:5432/bioloupe"


def test_masking_hides_the_password_where_a_dsn_holds_it_and_nowhere_else():
    """A one-letter password is masked as the DSN's value, never inside other words."""
    for dsn in ("postgresql://app:n@db/bioloupe", "host=db user=app password=n dbname=bioloupe",
                "postgresql://app@db/bioloupe?password=n"):
        message = ("permission denied for view refresh_order; could not connect with "
                   f"{dsn} or postgresql://app:n@db:5432/other or host=db password=n")
        masked = mask_text(message, dsn)
        assert masked.startswith("permission denied for view refresh_order; could not connect")
        assert ":n@" not in masked and "password=n" not in masked, masked
        assert masked.count("***") == 3, masked
        assert mask_text('invalid value: "n"', dsn) == 'invalid value: "***"'
        assert mask_text("Error: cannot reach PostgreSQL at app@db:5432/bioloupe", dsn) == (
            "Error: cannot reach PostgreSQL at app@db:5432/bioloupe")


def test_an_unparsable_dsn_never_echoes_its_password():
    """libpq quotes the token it cannot decode, which is the password: in the userinfo or in
    ?password=."""
    for bad in ("postgresql://u:ab%zz@h/d", "postgresql://u@h/d?password=ab%zz",
                "postgresql://u:p%00w@h/d"):
        with pytest.raises(ConfigError) as err:
            resolve_dsn(bad, {})
        message = str(err.value)
        assert "malformed DSN" in message and "percent-encoded" in message, message
        assert "ab%zz" not in message and "p%00w" not in message, message


def test_a_permission_error_with_a_one_letter_password_is_not_mangled(cli, dsn, server):
    """A role whose password is `n` and that has no rights here: PostgreSQL's message comes
    through whole, and the password nowhere as a DSN value."""
    role = f"pw_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server.dsn())
    admin.autocommit = True
    admin.cursor().execute(f"CREATE ROLE {role} LOGIN PASSWORD 'n'")
    try:
        url = f"postgresql://{role}:n@127.0.0.1:{server.port}/{dsn.rsplit('/', 1)[1]}"
        runs = [(("status",), "bioloupe-views"), ((), "refresh-views")]
        for (args, executable), by_option in itertools.product(runs, (True, False)):
            if by_option:   # --dsn, where the CLI masks its messages; else the environment
                result = cli(*args, "--dsn", url, executable=executable)
            else:
                result = cli(*args, dsn=url, executable=executable)
            output = result.stdout + result.stderr
            assert result.returncode == 2, output
            assert "Traceback" not in output
            error = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
            assert len(error) == 1 and error[0].startswith("Error: permission denied for "), output
            assert "***" not in error[0], output
            assert ":n@" not in output and "password=n" not in output, output
    finally:
        admin.cursor().execute(f"DROP ROLE {role}")
        admin.close()
