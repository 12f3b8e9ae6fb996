"""The app's reads on a hot standby while the primary refreshes, concurrently and plainly.

    .venv/bin/python -m benchmarks.standby --scale 10

A throwaway primary with the synthetic sources and the marts, and a real streaming replica
of it (`pg_basebackup -R`, hot_standby on, default standby settings). Readers run the app's
queries (readers.py) on the standby during `refresh-views` on the primary after a batch of
source changes: once with the default (CONCURRENTLY: an EXCLUSIVE lock, not WAL-logged),
once with `--no-concurrently` (ACCESS EXCLUSIVE, WAL-logged and replayed on the standby,
where it blocks readers until the primary commits). Reported per run: reads (p50/p99/max,
over 100 ms, errors such as recovery-conflict cancels), the standby's conflict counters,
and how long after the run the standby had replayed it.
Writes benchmarks/results/standby-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

import psycopg2  # noqa: E402

from bioloupe_views.dev import synthetic  # noqa: E402
from bioloupe_views.dev.pgserver import ThrowawayServer  # noqa: E402

from benchmarks import readers  # noqa: E402
from benchmarks import record as record_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _one(conn, query, params=None):
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchone()


def replay_seconds(primary, standby, timeout: float = 300) -> float:
    """Seconds until the standby has replayed everything the primary has written."""
    (lsn,) = _one(primary, "SELECT pg_current_wal_insert_lsn()::text")
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if _one(standby, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0]:
            return round(time.monotonic() - t0, 3)
        time.sleep(0.02)
    return float("inf")


def conflicts(standby) -> int:
    return _one(standby, "SELECT confl_lock + confl_snapshot + confl_bufferpin + confl_deadlock"
                         " + confl_tablespace FROM pg_stat_database_conflicts"
                         " WHERE datname = current_database()")[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.standby", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    exe = str(Path(sys.executable).parent / "refresh-views")
    report = {"scale": args.scale, "date": datetime.now().astimezone().isoformat(), "runs": {}}
    primary = ThrowawayServer().start()
    standby = None
    try:
        dsn = synthetic.migrated_database(primary, "bench", args.scale, analyze=True)
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        standby = primary.start_standby()
        standby_conn = psycopg2.connect(standby.dsn("bench"))
        standby_conn.autocommit = True
        replay_seconds(conn, standby_conn)
        queries = readers.build_queries(standby_conn)
        report["idle"] = readers.idle(standby.dsn("bench"), queries, 10)["all"]
        for label, extra in (("refresh-views (concurrent)", []),
                             ("refresh-views --no-concurrently", ["--no-concurrently"])):
            synthetic.mutate(conn)
            replay_seconds(conn, standby_conn)
            before = conflicts(standby_conn)
            with readers.Reader(standby.dsn("bench"), queries) as reader:
                t0 = time.perf_counter()
                done = subprocess.run([exe, "--dsn", dsn, *extra], capture_output=True, text=True)
                seconds = time.perf_counter() - t0
                lag = replay_seconds(conn, standby_conn)
            report["runs"][label] = {
                "exit": done.returncode, "seconds": round(seconds, 3),
                "replayed_after_seconds": lag, "reads": reader.result["all"],
                "first_error": reader.result["first_error"],
                "slowest": reader.result["slowest"][:3],
                "recovery_conflicts": conflicts(standby_conn) - before}
            print(label, json.dumps(report["runs"][label]["reads"]), flush=True)
        standby_conn.close()
        conn.close()
    finally:
        if standby:
            standby.stop()
        primary.stop()
    record_file.save(report, "standby", args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
