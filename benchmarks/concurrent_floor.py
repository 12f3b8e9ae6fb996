"""The least a concurrent full refresh can take on this machine.

PostgreSQL's `REFRESH MATERIALIZED VIEW CONCURRENTLY` statements alone, nothing else: no
VACUUM, ANALYZE, row count, checks or run log, one session per core, each session taking the
longest mart whose upstream marts are done (longest first by the one-at-a-time times the
per-mart phase measured). That is the best a list schedule does with these statements, so:

- against `dbt build`, it says whether any engine that publishes concurrently can meet a
  target relative to dbt on this machine;
- `refresh-views` minus this is what the engine adds (the audit, statistics, upkeep and its
  schedule).

The refreshes run as `refresh_mart()` runs them (no parallel workers: one core per mart).
"""

from __future__ import annotations

import os
import threading
import time

import psycopg2
from psycopg2 import sql

from bioloupe_views import definitions

from . import cpu


def measure(dsn: str, upstream: dict[str, set[str]], seconds: dict[str, float],
            postmaster: int, sessions: int | None = None) -> dict:
    """Refresh every mart in `upstream` once, concurrently, on `sessions` sessions (default:
    the machine's cores). `seconds` orders the ready marts, longest first."""
    sessions = sessions or os.cpu_count() or 1
    pending = set(upstream)
    done: set[str] = set()
    ran: dict[str, dict] = {}
    failed: list[str] = []
    ready = threading.Condition()
    t0 = time.perf_counter()

    def take() -> str | None:
        with ready:
            while pending and not failed:
                startable = [m for m in pending if upstream[m] <= done]
                if startable:
                    mart = max(startable, key=lambda m: (seconds.get(m, 0.0), m))
                    pending.discard(mart)
                    return mart
                ready.wait()
            return None

    def session(number: int) -> None:
        conn = psycopg2.connect(dsn, options="-c max_parallel_workers_per_gather=0")
        conn.autocommit = True
        try:
            while (mart := take()) is not None:
                start = time.perf_counter()
                try:
                    with conn.cursor() as cur:
                        cur.execute(sql.SQL("REFRESH MATERIALIZED VIEW CONCURRENTLY {}").format(
                            sql.Identifier(definitions.MART_SCHEMA, mart)))
                except psycopg2.Error as exc:
                    failed.append(f"{mart}: {str(exc).strip()}")
                end = time.perf_counter()
                ran[mart] = {"session": number, "started_s": round(start - t0, 3),
                             "seconds": round(end - start, 3)}
                with ready:
                    done.add(mart)
                    ready.notify_all()
        finally:
            conn.close()

    server_before = cpu.server_seconds(postmaster)
    workers = [threading.Thread(target=session, args=(n,)) for n in range(1, sessions + 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result = {"seconds": round(time.perf_counter() - t0, 3),
              "server_cpu_seconds": round(cpu.server_seconds(postmaster) - server_before, 2),
              "cpu_seconds": None, "peak_rss_mb": None, "exit_code": 1 if failed else 0,
              "sessions": sessions, "marts": ran}
    if failed:
        result["errors"] = failed
    return result
