"""One duration grammar for every option and environment variable: 500ms, 90s, 10m, 1h30m,
2d and their combinations; a bare number is seconds everywhere; what the tool prints (ages
as 2m37s) parses back; absurd values are refused when the command line is parsed."""

from __future__ import annotations

import re
import time

import psycopg2
import pytest

from bioloupe_views import durations
from tests.conftest import add_check
from tests.test_faults import assert_one_line_error

SLOW_CHECK = "slow_check_mv_drug_trials"


def refresh_views(cli, *args, dsn, env=None):
    return cli(*args, dsn=dsn, env=env, executable="refresh-views")


def last_run_options(sql) -> dict:
    return sql("SELECT options FROM bioloupe_views.run ORDER BY started_at DESC LIMIT 1")[0][0]


def test_a_bare_statement_timeout_is_seconds(dsn, cli, sql):
    """A check that sleeps 0.3s under the run's statement_timeout: `10` lets it finish (ten
    seconds), where it used to mean 10 ms and fail every mart."""
    add_check(dsn, "mv_drug_trials", SLOW_CHECK, "SELECT 1 FROM (SELECT pg_sleep(0.3)) s(v) WHERE v::text = 'never'")
    short = refresh_views(cli, "--select", "mv_drug_trials", "--statement-timeout", "100ms",
                          dsn=dsn)
    assert short.returncode == 1 and "statement timeout" in short.stdout, short.stdout
    bare = refresh_views(cli, "--select", "mv_drug_trials", "--statement-timeout", "10", dsn=dsn)
    assert bare.returncode == 0, bare.stdout + bare.stderr
    assert last_run_options(sql)["statement_timeout"] == "10000ms"


@pytest.mark.parametrize("value, setting", [("1h30m", "5400000ms"), ("2m 37s", "157000ms"),
                                            ("500ms", "500ms"), ("1.5", "1500ms"),
                                            ("5min", "300000ms")])
def test_lock_timeout_takes_combinations_and_the_old_forms(dsn, cli, sql, value, setting):
    result = refresh_views(cli, "--select", "mv_drug_trials", "--lock-timeout", value, dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert last_run_options(sql)["lock_timeout"] == setting


def test_wait_takes_a_duration(dsn, cli):
    holder = psycopg2.connect(dsn)
    try:
        holder.cursor().execute("SELECT bioloupe_views.try_refresh_lock()")
        started = time.monotonic()
        result = refresh_views(cli, "--wait", "1s", dsn=dsn)
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 1, result.stderr
    assert "not a valid float" not in result.stderr
    assert "another refresh holds the lock" in result.stderr and "(waited 1s)" in result.stderr
    assert waited >= 1


def test_log_retention_from_the_environment_takes_the_grammar(dsn, cli, sql):
    result = refresh_views(cli, "--select", "mv_drug_trials", dsn=dsn,
                           env={"BIOLOUPE_LOG_RETENTION": "1h30m"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert last_run_options(sql)["retention"] == "1 hours 30 minutes"
    bad = refresh_views(cli, dsn=dsn, env={"BIOLOUPE_LOG_RETENTION": "forever"})
    assert bad.returncode == 2
    assert_one_line_error(bad, "--log-retention 'forever' is not a duration", "1h30m",
                          "a bare number is seconds")


def test_max_age_bare_is_seconds_and_its_message_prints_the_grammar(dsn, cli, sql):
    assert refresh_views(cli, dsn=dsn).returncode == 0
    assert cli("status", "--max-age", "600", dsn=dsn).returncode == 0   # not 600 ms
    time.sleep(1.2)
    late = cli("status", "--max-age", "1", dsn=dsn)
    assert late.returncode == 1
    assert "Error: last successful refresh older than 1s: " in late.stderr, late.stderr
    # The ages it names are in the grammar too: each can be given back as --max-age.
    ages = re.findall(r"\((\S+) ago\)", late.stderr)
    assert ages and all(durations.is_duration(age) for age in ages), late.stderr
    assert cli("status", "--max-age", "1h30m", dsn=dsn).returncode == 0


@pytest.mark.parametrize("option, value, limit", [
    ("--wait", "25d", "2147483647ms (about 24.8 days)"),
    ("--statement-timeout", "2147484", "2147483647ms (about 24.8 days)"),
    ("--log-retention", "36501d", "36500d (100 years)"),
])
def test_absurd_values_are_refused_when_parsed(dsn, cli, sql, option, value, limit):
    result = refresh_views(cli, option, value, dsn=dsn)
    assert result.returncode == 2
    assert_one_line_error(result, f"{option} '{value}' is longer than", limit)
    assert sql("SELECT count(*) FROM bioloupe_views.run") == [(0,)]


def test_an_absurd_max_age_is_refused_in_one_line(dsn, cli):
    result = cli("status", "--max-age", "99999999d", dsn=dsn)
    assert result.returncode == 2
    assert_one_line_error(result, "--max-age '99999999d' is longer than 36500d (100 years)")


@pytest.mark.parametrize("text, seconds", [("500ms", 0.5), ("90s", 90), ("10m", 600),
                                           ("1h30m", 5400), ("2d", 172800), ("10", 10),
                                           ("2m37s", 157), ("1d 2h", 93600), ("5min", 300)])
def test_the_grammar(text, seconds):
    assert durations.seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "1h30", "ten", "-5s", "1 hour", "5mins", "1e3"])
def test_what_is_not_a_duration(text):
    assert not durations.is_duration(text)


@pytest.mark.parametrize("value", [0, 0.25, 1, 59, 61, 157, 3600, 5400, 86399, 90061, 10 ** 7])
def test_printed_durations_parse_back(value):
    printed = durations.format(value)
    assert durations.is_duration(printed), printed
    # Two units at most: within the smaller unit of the printed one.
    assert 0 <= value - durations.seconds(printed) < max(1, value / 24)
