"""Rewriting a small mart's bloated heap after a run, with the same rows, in a short lock.

REFRESH ... CONCURRENTLY never gives heap pages back. Deleting most of a mart's rows leaves
its heap far past a fresh build of the rest; within the same run the upkeep (heap_upkeep.py)
rewrites it with VACUUM FULL when the mart is small enough for its readers to wait. A mart
over --compact-up-to is left to the index rebuild; a lock it cannot get at once, a standby
that would replay the lock, or a role that may not, leave it with a line that says why.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import psycopg2

from bioloupe_views import heap_upkeep
from tests.conftest import assert_equal_to_seed
from tests.test_faults import SLOW as MART  # mv_efficacy_evidence, the largest mart
from tests.test_index_upkeep import SHRINK, _indexes

SLOT = "bioloupe_views_test_standby"


def _heap(sql):
    return sql("SELECT pg_relation_size(%s::regclass)", (f"public.{MART}",))[0][0]


def _ratio(dsn):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        return heap_upkeep.heap_ratio(cur, MART)


def _refresh(cli, dsn, *args):
    return cli("--select", MART, *args, dsn=dsn, executable="refresh-views")


class _Reader:
    """Reads the mart by index every 10 ms, timing each read (a failed one too, with its
    error), while the run goes on."""

    def __init__(self, dsn):
        self.dsn, self.reads, self.errors = dsn, [], []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop)

    def _loop(self):
        conn = psycopg2.connect(self.dsn, options="-c statement_timeout=5000")
        conn.autocommit = True
        with conn.cursor() as cur:
            while not self.done.is_set():
                t0 = time.perf_counter()
                try:
                    cur.execute(f"SELECT count(*) FROM public.{MART} WHERE drug_id = 1")
                except psycopg2.Error as exc:
                    self.errors.append(str(exc))
                finally:
                    self.reads.append(time.perf_counter() - t0)
                time.sleep(0.01)
        conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.done.set()
        self.thread.join()


def test_a_small_bloated_mart_is_rewritten_with_its_rows_and_readers_barely_wait(
        dsn, cli, sql, tmp_path):
    names = _indexes(sql)
    sql(SHRINK)
    results = tmp_path / "run.json"
    with _Reader(dsn) as reader:
        result = _refresh(cli, dsn, "--json", str(results))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Upkeep: rewrote {MART} (its heap was" in result.stdout, result.stdout
    assert "the indexes of" not in result.stdout  # the rewrite rebuilt them already
    rewrites = json.loads(results.read_text())["heap_rewrites"]
    assert [r["mart"] for r in rewrites] == [MART] and rewrites[0]["ratio"] > 2, rewrites
    assert rewrites[0]["after"] < rewrites[0]["before"] / 2, rewrites
    assert _ratio(dsn) < 1.1  # as compact as a fresh build
    assert _indexes(sql) == names
    with psycopg2.connect(dsn) as conn:
        assert_equal_to_seed(conn)
    # Readers waited for the rewrite, never long (~2 MB at test scale: tens of ms).
    assert reader.errors == []
    assert len(reader.reads) > 20 and max(reader.reads) < 0.5, max(reader.reads)
    # Compact now: the next run leaves it alone.
    again = _refresh(cli, dsn)
    assert again.returncode == 0 and "Upkeep" not in again.stdout, again.stdout


def test_a_mart_over_compact_up_to_keeps_its_heap_and_gets_its_indexes_rebuilt(dsn, cli, sql):
    sql(SHRINK)
    result = _refresh(cli, dsn, "--compact-up-to", "64kB")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rewrote" not in result.stdout
    assert f"Upkeep: rebuilt the indexes of {MART} concurrently" in result.stdout, result.stdout
    assert _ratio(dsn) > 2


def test_a_reader_holding_the_mart_makes_the_rewrite_give_up_at_once(dsn, cli, sql, tmp_path):
    """The rewrite's lock request queues readers behind it: it waits at most
    heap_upkeep.WAIT, then leaves the heap for a later run and the indexes to the
    concurrent rebuild (which in turn gives up on the open transaction)."""
    sql(SHRINK)
    before = _heap(sql)
    report = psycopg2.connect(dsn)
    report.cursor().execute(f"SELECT count(*) FROM public.{MART}")  # holds ACCESS SHARE
    try:
        result = _refresh(cli, dsn, "--json", str(tmp_path / "run.json"))
    finally:
        report.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Upkeep: left {MART} as it is (its heap was" in result.stdout, result.stdout
    assert "lock timeout" in result.stdout and "a later run tries again" in result.stdout
    rewrite = json.loads((tmp_path / "run.json").read_text())["heap_rewrites"][0]
    assert rewrite["after"] is None and rewrite["seconds"] < 1, rewrite  # WAIT, not more
    assert _heap(sql) >= before
    again = _refresh(cli, dsn)
    assert f"Upkeep: rewrote {MART}" in again.stdout, again.stdout


def test_a_standby_slot_keeps_the_heap_as_it_is_and_says_what_to_do(dsn, cli, sql):
    """A standby replays the rewrite's ACCESS EXCLUSIVE and cancels its own readers of the
    mart; a physical slot means one streams (or will) from this server."""
    sql(SHRINK)
    sql("SELECT pg_create_physical_replication_slot(%s)", (SLOT,))
    try:
        result = _refresh(cli, dsn)
    finally:
        sql("SELECT pg_drop_replication_slot(%s)", (SLOT,))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Upkeep: left {MART} as it is" in result.stdout, result.stdout
    assert "a physical standby streams from this server" in result.stdout
    assert f"refresh-views --no-concurrently --select {MART}" in result.stdout
    # Its indexes are still kept bounded, concurrently.
    assert f"Upkeep: rebuilt the indexes of {MART}" in result.stdout
    assert _ratio(dsn) > 2


def test_compact_up_to_takes_a_size(cli, dsn):
    result = _refresh(cli, dsn, "--compact-up-to", "lots")
    assert result.returncode == 2
    assert "'lots' is not a size; use e.g. 0, 512kB, 4MB, 1GB" in result.stderr


def test_the_fresh_build_estimate_of_a_mart_of_a_page_or_two_is_that(dsn, sql):
    """Marts this small must neither be rewritten on every run nor never: a fresh build of
    three rows takes one page, of 150 short rows two."""
    for rows in (3, 150):
        name = f"bv_test_tiny_{rows}"
        sql(f"CREATE MATERIALIZED VIEW public.{name} AS"
            f" SELECT g AS id, repeat('x', 40) AS label FROM generate_series(1, {rows}) g")
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            ratio = heap_upkeep.heap_ratio(cur, name)
        assert ratio is not None and 0.9 <= ratio <= 1.1, (rows, ratio)


def test_a_leftover_index_copy_is_dropped_before_the_rewrite_would_make_it_valid(
        dsn, cli, sql):
    """VACUUM FULL rebuilds every index, an invalid non-unique one as a valid duplicate that
    no later run would recognise as a leftover of REINDEX CONCURRENTLY."""
    names = _indexes(sql)
    sql(SHRINK)
    sql(f"CREATE INDEX {MART}_disease_id_ccnew ON public.{MART} (disease_id)")
    sql("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
        (f"public.{MART}_disease_id_ccnew",))  # as an interrupted REINDEX leaves it
    result = _refresh(cli, dsn)
    assert f"Upkeep: rewrote {MART}" in result.stdout, result.stdout
    assert _indexes(sql) == names


def test_a_role_that_may_not_rewrite_the_mart_is_told_so_in_one_line(dsn, cli, sql, server):
    """The refresher role owns no mart: VACUUM FULL would only warn and skip it, REINDEX
    would fail."""
    from bioloupe_views import roles
    dbname = dsn.rsplit("/", 1)[1]
    refresher = f"refresher_{uuid.uuid4().hex[:8]}"  # roles outlive the test's database
    sql(f"CREATE ROLE {refresher} LOGIN PASSWORD 'secret-pw'")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        roles.grant_refresher(cur, refresher)
    sql(SHRINK)
    as_refresher = f"postgresql://{refresher}:secret-pw@127.0.0.1:{server.port}/{dbname}"
    result = _refresh(cli, as_refresher)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(l for l in result.stdout.splitlines() if f"Upkeep: left {MART} as it is" in l)
    assert "this role may not VACUUM FULL it" in line, line
    assert f"refresh-views --no-concurrently --select {MART}" in line
    assert _ratio(dsn) > 2
    # Nor may it rebuild the indexes: said as plainly, without a retry it cannot win.
    line = next(l for l in result.stdout.splitlines() if "Upkeep: left the indexes" in l)
    assert "this role may not REINDEX them" in line and "later run" not in line, line
