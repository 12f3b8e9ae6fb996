"""Where the checks' time goes: each mart's checks timed one by one, the way run_checks()
runs them, next to the mart's concurrent refresh.

    .venv/bin/python -m benchmarks.check_costs --scale 60

A throwaway server with the synthetic sources and the marts. Per mart: a concurrent refresh
and ANALYZE after a batch of source changes, then each check as run_checks() reads it (a
check implied by a unique index reads nothing but its guard, if it has one, in the column
checks' scan; the column checks share one scan, timed once; any other check counts its
offending rows and takes a sample of 5). Every check passes here, so none reads its view a
second time. Writes benchmarks/results/check-costs-<time>.json and prints a table, costliest
first.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

import psycopg2  # noqa: E402
from psycopg2 import sql  # noqa: E402

from bioloupe_views import definitions, mart_graph  # noqa: E402
from bioloupe_views.dev import synthetic  # noqa: E402
from bioloupe_views.dev.pgserver import ThrowawayServer  # noqa: E402

from benchmarks import record as record_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHECKS = definitions.CHECKS_SCHEMA

_OFFENDING = ("WITH offending AS MATERIALIZED (SELECT * FROM {view}) SELECT count(*),"
              " (SELECT jsonb_agg(to_jsonb(s)) FROM (SELECT * FROM offending LIMIT 5) s)"
              " FROM offending")


def _timed(cur, statement) -> float:
    t0 = time.perf_counter()
    cur.execute(statement)
    cur.fetchall()
    return round(time.perf_counter() - t0, 3)


def measure(cur, mart: str) -> dict:
    """The mart's concurrent refresh with its ANALYZE (as refresh_view() runs them: the checks
    are planned on the new rows' statistics) and each of its checks, in seconds."""
    refresh = _timed(cur, sql.SQL("REFRESH MATERIALIZED VIEW CONCURRENTLY {0}; ANALYZE {0};"
                                  " SELECT 1").format(sql.Identifier(definitions.MART_SCHEMA, mart)))
    cur.execute("SELECT name, relation, coalesce(batch_relation, implied_guard_relation),"
                " implied_by FROM bioloupe_views.mart_check WHERE mart = %s ORDER BY position",
                (mart,))
    checks, batches = {}, {}
    for name, relation, batch, implied in cur.fetchall():
        if implied and not batch:
            checks[name] = {"seconds": 0.0, "how": f"implied by {implied}"}
        elif batch:
            if batch not in batches:
                batches[batch] = _timed(cur, sql.SQL("SELECT * FROM {}").format(
                    sql.Identifier(CHECKS, batch)))
                checks[name] = {"seconds": batches[batch], "how": f"one scan ({batch})"}
            else:
                checks[name] = {"seconds": 0.0, "how": f"in the scan of {batch}"}
        else:
            checks[name] = {"seconds": _timed(cur, sql.SQL(_OFFENDING).format(
                view=sql.Identifier(CHECKS, relation))), "how": "its own view"}
    return {"refresh_seconds": refresh, "checks": checks,
            "checks_seconds": round(sum(c["seconds"] for c in checks.values()), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_costs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    report = {"scale": args.scale, "date": datetime.now().astimezone().isoformat(), "marts": {}}
    server = ThrowawayServer().start()
    try:
        dsn = synthetic.migrated_database(server, "bench", args.scale, analyze=True)
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET max_parallel_workers_per_gather = 0")  # as refresh_mart() runs
            synthetic.mutate(conn)
            for mart in mart_graph.load(conn).order:
                report["marts"][mart] = measure(cur, mart)
        conn.close()
    finally:
        server.stop()
    rows = sorted(((c["seconds"], mart, name, c["how"])
                   for mart, m in report["marts"].items() for name, c in m["checks"].items()),
                  reverse=True)
    for seconds, mart, name, how in rows:
        print(f"{seconds:8.3f}s  {name}  ({how})")
    refresh = sum(m["refresh_seconds"] for m in report["marts"].values())
    checks = sum(m["checks_seconds"] for m in report["marts"].values())
    print(f"refreshes {refresh:.1f}s, checks {checks:.1f}s "
          f"({100 * checks / (refresh + checks):.0f}% of both), one at a time")
    record_file.save(report, "check-costs", args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
