"""A database behind the code's migrations (or ahead of them) is one line in status, doctor
and refresh-views: its revision against the code's head, and what to do."""

from __future__ import annotations

import json

import pytest
from alembic.script import ScriptDirectory

from bioloupe_views import migrate

SCRIPT = ScriptDirectory.from_config(migrate.alembic_config(""))
HEAD = SCRIPT.get_current_head()
PREVIOUS = SCRIPT.get_revision(HEAD).down_revision
COMMANDS = {"status": ("bioloupe-views", "status"), "doctor": ("bioloupe-views", "doctor"),
            "refresh-views": ("refresh-views", "--select", "mv_drug_pipeline")}


def _at_revision(sql, revision: str) -> None:
    """The version table as a database at `revision` has it (Alembic reads nothing else)."""
    sql("UPDATE public.bioloupe_views_alembic_version SET version_num = %s", (revision,))


def _run(cli, command: str, dsn: str):
    executable, *args = COMMANDS[command]
    return cli(*args, dsn=dsn, executable=executable)


def _notes(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("note: the database")]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_behind_the_code_is_one_line(dsn, cli, sql, command):
    _at_revision(sql, PREVIOUS)
    result = _run(cli, command, dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _notes(result) == [f"note: the database is at revision {PREVIOUS}, the code's head "
                              f"is {HEAD}: run `alembic upgrade head`"]
    assert "note:" not in result.stdout  # status --json and the reports stay clean


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_ahead_of_the_code_is_one_line(dsn, cli, sql, command):
    _at_revision(sql, "9999")
    result = _run(cli, command, dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _notes(result) == [f"note: the database is at revision 9999, which this code does not "
                              f"know (its head is {HEAD}): a newer release migrated it; use that "
                              "release"]


def test_a_database_at_head_says_nothing_and_status_json_names_both(dsn, cli, sql):
    for command in COMMANDS:
        result = _run(cli, command, dsn)
        assert result.returncode == 0, result.stderr
        assert _notes(result) == []
    _at_revision(sql, PREVIOUS)
    data = json.loads(cli("status", "--json", dsn=dsn).stdout)
    assert data["revision"] == {"database": PREVIOUS, "head": HEAD}
