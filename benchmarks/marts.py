"""Per-mart costs: the floor (the bare query), a plain refresh and a concurrent refresh, plus
the source indexes each mart's plan uses. The floor's table also gets the mart's indexes,
timed apart, to show how much of a plain refresh is index building.

The floor is `CREATE TEMP TABLE AS` with the mart's own SELECT (definitions: MartVersion.query
at the version the database records): what the query costs with nothing around it, no WAL,
no indexes, no diff. All three are timed on one session with the server's settings, so
they compare like with like, and are repeated, interleaved, to spread the noise of a shared
machine.
"""

from __future__ import annotations

import json
import statistics
import time

from psycopg2 import sql

from bioloupe_views import contract, definitions
from bioloupe_views.commands import doctor


def refresh_settings(conn) -> dict[str, str]:
    """The settings bioloupe_views.refresh_mart() runs with (its SET clauses, if any), which
    refresh-views and pg_cron use and the bare statements timed here do not."""
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(proconfig, '{}') FROM pg_proc"
                    " WHERE oid = 'bioloupe_views.refresh_mart(uuid, text)'::regprocedure")
        return dict(item.split("=", 1) for item in cur.fetchone()[0])


def mart_versions(conn) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT name, version FROM bioloupe_views.mart")
        return dict(cur.fetchall())


def _timed(cur, statement) -> float:
    t0 = time.perf_counter()
    cur.execute(statement)
    return time.perf_counter() - t0


def measure(conn, order: list[str], repeat: int, log, before_round=None) -> dict:
    """Median floor / plain / concurrent seconds per mart, with the raw runs, and the time to
    build the mart's indexes on the floor's table. Each round
    starts with `before_round()` (a batch of source changes), so the concurrent refresh,
    which runs before the plain one, has a real difference to apply."""
    versions = mart_versions(conn)
    runs = {m: {"floor": [], "indexes": [], "plain": [], "concurrent": []} for m in order}
    with conn.cursor() as cur:
        for attempt in range(1, repeat + 1):
            if before_round:
                before_round()
            for mart in order:
                body = definitions.get(mart).version(versions[mart]).query
                ident = sql.Identifier(definitions.MART_SCHEMA, mart)
                runs[mart]["floor"].append(_timed(cur, sql.SQL(
                    "CREATE TEMP TABLE bench_floor AS\n{}").format(sql.SQL(body))))
                runs[mart]["indexes"].append(sum(  # what a plain refresh adds, besides WAL
                    _timed(cur, statement) for statement in
                    definitions.get(mart).version(versions[mart]).index_statements("pg_temp", "bench_floor")))
                cur.execute("DROP TABLE bench_floor")
                runs[mart]["concurrent"].append(_timed(cur, sql.SQL(
                    "REFRESH MATERIALIZED VIEW CONCURRENTLY {}").format(ident)))
                runs[mart]["plain"].append(_timed(cur, sql.SQL(
                    "REFRESH MATERIALIZED VIEW {}").format(ident)))
                r = runs[mart]
                log(f"  {attempt}/{repeat} {mart:26s} floor {r['floor'][-1]:7.2f}s  "
                    f"plain {r['plain'][-1]:7.2f}s  concurrent {r['concurrent'][-1]:7.2f}s")
        result = {}
        for mart in order:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(definitions.MART_SCHEMA, mart)))
            rows = cur.fetchone()[0]
            med = {k: statistics.median(v) for k, v in runs[mart].items()}
            result[mart] = {
                "rows": rows,
                "floor_s": round(med["floor"], 3),
                "plain_s": round(med["plain"], 3),
                "concurrent_s": round(med["concurrent"], 3),
                "floor_indexes_s": round(med["indexes"], 3),
                "plain_vs_floor_and_indexes": round(med["plain"] / (med["floor"] + med["indexes"]), 2),
                "plain_ratio": round(med["plain"] / med["floor"], 2),
                "concurrent_ratio": round(med["concurrent"] / med["floor"], 2),
                "runs": {k: [round(x, 3) for x in v] for k, v in runs[mart].items()},
            }
    return result


def plan_source_indexes(conn, order: list[str]) -> dict[str, list[str]]:
    """The indexes on source tables each mart's plan uses (from EXPLAIN), as table(index)."""
    versions = mart_versions(conn)
    sources = set(contract.tables())
    used: dict[str, list[str]] = {}
    with conn.cursor() as cur:
        for mart in order:
            body = definitions.get(mart).version(versions[mart]).query
            cur.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(body)))
            plan = cur.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            found: set[str] = set()

            def walk(node):
                if "Index Name" in node and node.get("Relation Name") in sources:
                    found.add(f"{node['Relation Name']}({node['Index Name']})")
                for child in node.get("Plans", []):
                    walk(child)
            walk(plan[0]["Plan"])
            used[mart] = sorted(found)
    return used


def create_source_indexes(conn, extra: list[tuple[str, tuple[str, ...]]], log) -> dict:
    """Run doctor's missing-index statements, as a user would after `bioloupe-views doctor`,
    plus `extra` (table, columns) indexes that only the dbt baseline's SQL needs."""
    _, findings = doctor.diagnose(conn)
    wanted = [doctor.create_statement(conn, f) for f in findings if f.existing is None]
    baseline = []
    for table, columns in extra:
        finding = doctor.Finding(table, columns, [], [], None)
        if not any(f.table == table and f.columns == columns for f in findings):
            baseline.append(doctor.create_statement(conn, finding))
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        for statement in wanted + baseline:
            log(f"  {statement}")
            cur.execute(statement)
        cur.execute("ANALYZE")
    return {"doctor": wanted, "dbt_baseline_only": baseline,
            "seconds": round(time.perf_counter() - t0, 3)}
