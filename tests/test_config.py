"""Issue 2: one DSN resolution for Alembic and the CLI; passwords never shown."""

from __future__ import annotations

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
    dsn = resolve_dsn(None, PARTS)
    assert "p@ss:w/rd" not in mask_text("failed for p@ss:w/rd and p%40ss%3Aw%2Frd", dsn)
    assert describe(dsn) == "etl@db.internal:5432/bioloupe"
