"""Rebuilding a mart's bloated indexes after a run, concurrently, without holding anyone up.

REFRESH ... CONCURRENTLY leaves B-tree pages split; the quickest way to get an index far
past the size a fresh build would take is to delete most of a mart's rows: the refresh
deletes them from the mart, and its indexes keep their pages. Within the same run, the
upkeep (index_upkeep.py) rebuilds them. The heap is just as bloated then, and at test scale
small enough for heap_upkeep's rewrite, which rebuilds the indexes too: these runs turn the
rewrite off (--compact-up-to 0), as a mart over its limit would.
"""

from __future__ import annotations

import threading
import time

import psycopg2

from bioloupe_views import index_upkeep
from tests.conftest import assert_equal_to_seed
from tests.test_faults import SLOW as MART  # mv_efficacy_evidence, the largest mart

SHRINK = "DELETE FROM public.trial_arm_results WHERE id % 10 <> 0"
NO_REWRITE = ("--compact-up-to", "0")


def _indexes(sql):
    return dict(sql("SELECT indexrelid::regclass::text, indisvalid FROM pg_index"
                    " WHERE indrelid = %s::regclass", (f"public.{MART}",)))


def _index_bytes(sql):
    return sql("SELECT pg_indexes_size(%s::regclass)", (f"public.{MART}",))[0][0]


def test_a_bloated_mart_gets_its_indexes_rebuilt_and_keeps_its_rows(dsn, cli, sql):
    names = _indexes(sql)
    sql(SHRINK)
    before = _index_bytes(sql)
    result = cli("--select", MART, *NO_REWRITE, "--json", "/dev/stdout", dsn=dsn,
                 executable="refresh-views")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Upkeep: rebuilt the indexes of {MART} concurrently" in result.stdout
    assert '"index_rebuilds"' in result.stdout
    after = _index_bytes(sql)
    assert after < before / 2, (before, after)
    assert _indexes(sql) == names  # the same indexes, all valid, no copy left behind
    with psycopg2.connect(dsn) as conn:
        assert_equal_to_seed(conn)
    # Now compact: the next run leaves them alone.
    again = cli("--select", MART, *NO_REWRITE, dsn=dsn, executable="refresh-views")
    assert again.returncode == 0 and "Upkeep" not in again.stdout, again.stdout


def test_no_vacuum_leaves_the_indexes_alone(dsn, cli, sql):
    sql(SHRINK)
    before = _index_bytes(sql)
    result = cli("--select", MART, "--no-vacuum", dsn=dsn, executable="refresh-views")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Upkeep" not in result.stdout
    assert _index_bytes(sql) >= before


def test_a_long_transaction_never_holds_the_run_and_readers_read_meanwhile(dsn, cli, sql):
    """REINDEX CONCURRENTLY waits for every older transaction; an open report must not hold
    the run. The rebuild gives up after index_upkeep.WAIT, drops its half-built copies,
    and all along a reader of the mart is served at once."""
    names = _indexes(sql)
    sql(SHRINK)
    report = psycopg2.connect(dsn)
    report.set_session(isolation_level="REPEATABLE READ")
    report.cursor().execute("SELECT 1")  # holds a snapshot older than the rebuild
    reads, done = [], threading.Event()

    def reader():
        conn = psycopg2.connect(dsn, options="-c statement_timeout=2000")
        conn.autocommit = True
        with conn.cursor() as cur:
            while not done.is_set():
                t0 = time.perf_counter()
                cur.execute(f"SELECT count(*) FROM public.{MART} WHERE drug_id = 1")
                reads.append(time.perf_counter() - t0)
                time.sleep(0.05)
        conn.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        t0 = time.monotonic()
        result = cli("--select", MART, *NO_REWRITE, dsn=dsn, executable="refresh-views")
        took = time.monotonic() - t0
    finally:
        done.set()
        thread.join()
        report.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Upkeep: left the indexes of {MART} as they are" in result.stdout
    assert "lock timeout" in result.stdout and "a later run tries again" in result.stdout
    wait = float(index_upkeep.WAIT.removesuffix("s"))
    assert took < wait + 20, took
    assert _indexes(sql) == names  # no invalid *_ccnew copy left
    assert len(reads) > 20 and max(reads) < 0.5, (len(reads), max(reads))
    # With the report gone, the next run rebuilds.
    again = cli("--select", MART, *NO_REWRITE, dsn=dsn, executable="refresh-views")
    assert f"Upkeep: rebuilt the indexes of {MART}" in again.stdout, again.stdout
