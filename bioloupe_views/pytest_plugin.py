"""pytest plugin: the data checks as test items, against any database.

    pytest --pyargs bioloupe_views.data_checks --bioloupe-dsn postgresql://...

collects one test per check stored in that database (bioloupe_views.check_definition) and
runs them through the same bioloupe_views.run_checks() as `bioloupe-views check`, so both
report the same passes and failures. Without --bioloupe-dsn the usual BIOLOUPE_* settings are
used. Installed as a pytest11 entry point, so a team adds the checks to any pytest job.
"""

from __future__ import annotations

import warnings

import psycopg2
import pytest

from . import checks as mart_checks
from . import mart_graph, missing_marts
from .config import mask_text, resolve_dsn
from .db import connect, first_line
from .errors import UserError


def pytest_addoption(parser):
    group = parser.getgroup("bioloupe-views", "bioloupe-views data checks")
    group.addoption("--bioloupe-dsn", default=None, metavar="DSN",
                    help="Database whose marts the data checks run against "
                         "(default: BIOLOUPE_DATABASE_URL / BIOLOUPE_DB_*).")


def _results(config) -> list[dict] | str:
    """All check results for the database, computed once per session, or why not."""
    if not hasattr(config, "_bioloupe_results"):
        dsn = None
        try:
            dsn = resolve_dsn(config.getoption("bioloupe_dsn"))
            conn = connect(dsn)
            try:
                order = mart_graph.load(conn).order
                missing_marts.require_present(conn)
                results = mart_checks.run(conn, order)
            finally:
                conn.close()
            config._bioloupe_results = results
        except UserError as exc:
            config._bioloupe_results = _masked(str(exc), dsn)
        except psycopg2.Error as exc:  # e.g. no privilege on the bioloupe_views schema
            config._bioloupe_results = _masked(first_line(exc), dsn)
    return config._bioloupe_results


def _masked(text: str, dsn: str | None) -> str:
    return mask_text(text, dsn) if dsn else text


def pytest_generate_tests(metafunc):
    if "bioloupe_check" not in metafunc.fixturenames:
        return
    results = _results(metafunc.config)
    if isinstance(results, str):
        # Fail closed: a job that cannot reach the database, or whose database was never
        # migrated, must not pass as "1 skipped". Deselect the item (-k, -m) to opt out.
        metafunc.parametrize("bioloupe_check", [NotRun(results)], ids=["no-database"])
        return
    metafunc.parametrize("bioloupe_check", results, ids=[r["name"] for r in results])


class NotRun(str):
    """Why the data checks could not run at all (no connection, not migrated): one line,
    already free of passwords."""


def assert_check(result) -> None:
    """Fail like `bioloupe-views check` would: error severity, failed or unable to run."""
    if isinstance(result, NotRun):
        pytest.fail(f"bioloupe-views data checks not run: {result}", pytrace=False)
    if result["status"] == "error":
        pytest.fail(f"{result['name']} could not run: {result['error']}", pytrace=False)
    if result["blocks"]:
        pytest.fail(f"{result['name']}: {result['failures']} failures, e.g. {result['sample']}",
                    pytrace=False)
    if result["status"] == "warn":
        warnings.warn(f"{result['name']}: {result['failures']} failures (severity warn)")
