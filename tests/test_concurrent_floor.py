"""The benchmark's floor of a concurrent run (benchmarks/concurrent_floor.py): every mart
refreshed once, concurrently, a dependent only after its upstream marts are done, the longest
ready mart first, and a failed refresh reported instead of a figure that looks valid."""

from __future__ import annotations

import psycopg2

from benchmarks import concurrent_floor, cpu
from bioloupe_views import mart_graph


def _floor(server, dsn, seconds, sessions=2):
    with psycopg2.connect(dsn) as conn:
        upstream = mart_graph.load(conn).upstream
    conn.close()
    return upstream, concurrent_floor.measure(dsn, upstream, seconds,
                                              cpu.postmaster_pid(server.datadir), sessions)


def test_the_floor_refreshes_each_mart_once_in_a_list_schedule(server, dsn):
    # Made-up one-at-a-time times, so that the order is the policy's, not the data's.
    seconds = {"mv_efficacy_evidence": 30.0, "mv_development_programs": 20.0,
               "mv_drug_trials": 10.0, "mv_competitive_landscape": 5.0, "mv_drug_pipeline": 1.0}
    upstream, result = _floor(server, dsn, seconds)
    assert result["exit_code"] == 0 and "errors" not in result, result
    assert set(result["marts"]) == set(upstream) == set(seconds)
    ran = result["marts"]
    for mart, ups in upstream.items():
        for up in ups:
            assert ran[mart]["started_s"] >= ran[up]["started_s"] + ran[up]["seconds"], (mart, up)
    first = sorted(ran, key=lambda m: ran[m]["started_s"])[:2]
    assert set(first) == {"mv_efficacy_evidence", "mv_development_programs"}, ran
    assert {r["session"] for r in ran.values()} == {1, 2}
    # At test scale the server's CPU can round to 0.0s; the figure must still be measured.
    assert result["seconds"] > 0 and isinstance(result["server_cpu_seconds"], float)
    assert result["server_cpu_seconds"] >= 0
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_matviews "
                    "WHERE schemaname = 'public' AND NOT ispopulated")
        assert cur.fetchone()[0] == 0
    conn.close()


def test_a_refresh_that_fails_is_reported_not_timed_as_done(server, dsn, sql):
    # CONCURRENTLY refuses a mart that is not populated.
    sql("REFRESH MATERIALIZED VIEW public.mv_drug_pipeline WITH NO DATA")
    _, result = _floor(server, dsn, {"mv_drug_pipeline": 100.0})
    assert result["exit_code"] == 1
    assert any(e.startswith("mv_drug_pipeline: ") and "CONCURRENTLY" in e
               for e in result["errors"]), result
