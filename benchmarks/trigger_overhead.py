"""What the source change trigger (`bioloupe-views track-sources`) adds to a bulk load.

    .venv/bin/python -m benchmarks.trigger_overhead --scale 1 --rows 20000 --repeat 5

On a throwaway server (never a real database): the synthetic sources at --scale, migrated
to head; then a copy of one source table (--table, `LIKE ... INCLUDING ALL`: the same
columns, defaults, indexes and constraints) is bulk loaded from the client with its own
rows, in one transaction, by statements of 1 row and of 1000 rows (psycopg2's
execute_values), with and without the trigger, alternating (ABBA), and the overhead is the
median of the rounds' ratios (a shared machine's noise hits both halves of a round alike).
Two more cases: one row per transaction (autocommit), the worst case, where every statement
is the first of its transaction and writes a change-log row; and the same 1-row inserts in a
server-side loop (no client round trip), which shows the trigger's own cost per statement.
Target: at most 5% for the bulk loads. Prints a table and writes --json if asked.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psycopg2 import sql  # noqa: E402
from psycopg2.extras import execute_values  # noqa: E402

from bioloupe_views import migrate, source_tracking  # noqa: E402
from bioloupe_views.db import connect  # noqa: E402
from bioloupe_views.dev import synthetic  # noqa: E402
from bioloupe_views.dev.pgserver import ThrowawayServer  # noqa: E402

DBNAME = "bioloupe_trigger_bench"
TARGET = "bench_target"
STAGE = "bench_stage"
CASES = (("1-row statements, one transaction", 1, False),
         ("1000-row statements, one transaction", 1000, False),
         ("1-row statements, autocommit (worst case)", 1, True),
         ("1-row statements, server-side loop", 0, False))
LIMIT_PERCENT = 5.0


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", flush=True)


def _load(conn, rows: list[tuple], columns: sql.Composable, per_statement: int,
          autocommit: bool) -> float:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier("public", TARGET)))
    conn.commit()
    conn.autocommit = autocommit
    statement = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(
        sql.Identifier("public", TARGET), columns).as_string(conn)
    t0 = time.perf_counter()
    if per_statement == 0:   # the server-side loop: the same rows, one INSERT each
        with conn.cursor() as cur:
            stage = sql.Identifier("public", STAGE)
            cur.execute(sql.SQL("DO $$ DECLARE r {}%ROWTYPE; BEGIN FOR r IN SELECT * FROM {} LOOP "
                                "INSERT INTO {} SELECT (r).*; END LOOP; END $$").format(
                stage, stage, sql.Identifier("public", TARGET)))
        conn.commit()
        return time.perf_counter() - t0
    with conn.cursor() as cur:
        for start in range(0, len(rows), per_statement):
            execute_values(cur, statement, rows[start:start + per_statement],
                           page_size=per_statement)
    if not autocommit:
        conn.commit()
    seconds = time.perf_counter() - t0
    conn.autocommit = False
    return seconds


def _set_trigger(conn, on: bool) -> None:
    source = source_tracking.Source("public", TARGET, "r", True, False, on)
    statement = (source_tracking.track_statement(source) if on
                 else source_tracking.untrack_statement(source))
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.commit()


def measure(dsn: str, table: str, n_rows: int, repeat: int) -> list[dict]:
    conn = connect(dsn, autocommit=False)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
            sql.Identifier("public", TARGET), sql.Identifier("public", table)))
        cur.execute(sql.SQL("SELECT * FROM {} LIMIT %s").format(sql.Identifier("public", table)),
                    (n_rows,))
        rows = cur.fetchall()
        names = [d.name for d in cur.description]
        cur.execute(sql.SQL("CREATE TABLE {} AS SELECT * FROM {} LIMIT %s").format(
            sql.Identifier("public", STAGE), sql.Identifier("public", table)), (n_rows,))
    conn.commit()
    columns = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    results = []
    for label, per_statement, autocommit in CASES:
        count = len(rows)
        timings = {False: [], True: []}
        ratios = []
        for round_ in range(repeat):
            pair = {}
            for on in ((False, True, True, False) if round_ % 2 == 0 else (True, False, False, True)):
                _set_trigger(conn, on)
                seconds = _load(conn, rows, columns, per_statement, autocommit)
                timings[on].append(seconds)
                pair[on] = pair.get(on, 0.0) + seconds
            ratios.append(pair[True] / pair[False])
        _set_trigger(conn, False)
        without, with_ = statistics.median(timings[False]), statistics.median(timings[True])
        result = {"case": label, "rows": count,
                  "statements": count if per_statement <= 1 else -(-count // per_statement),
                  "without_s": round(without, 4), "with_s": round(with_, 4),
                  "overhead_percent": round(100 * (statistics.median(ratios) - 1), 2),
                  "per_statement_us": round(1e6 * (with_ - without)
                                            / (count if per_statement <= 1 else -(-count // per_statement)), 2),
                  "runs": {"without": timings[False], "with": timings[True]}}
        results.append(result)
        log(f"  {label}: {count} rows, without {without:.3f}s, with {with_:.3f}s, "
            f"{result['overhead_percent']:+.2f}% (median of the rounds' ratios)")
    conn.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--table", default="trial_arm_results",
                        help="the source table whose copy is loaded")
    parser.add_argument("--rows", type=int, default=20000, help="rows per load")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    server = ThrowawayServer()
    log("starting a throwaway PostgreSQL server")
    server.start()
    try:
        dsn = server.create_database(DBNAME)
        conn = connect(dsn)
        log(f"loading synthetic sources at scale {args.scale:g}")
        synthetic.load(conn, args.scale)
        conn.close()
        log("alembic upgrade head")
        migrate.upgrade(dsn)
        log(f"bulk loads of a copy of {args.table}, median of {args.repeat}")
        results = measure(dsn, args.table, args.rows, args.repeat)
    finally:
        server.stop()
    print()
    print(f"{'case':<44} {'rows':>7} {'without':>9} {'with':>9} {'overhead':>9} {'per stmt':>10}")
    for r in results:
        print(f"{r['case']:<44} {r['rows']:>7} {r['without_s']:>8.3f}s {r['with_s']:>8.3f}s "
              f"{r['overhead_percent']:>+8.2f}% {r['per_statement_us']:>+8.2f}us")
    bulk = [r for r in results if "one transaction" in r["case"]]
    ok = all(r["overhead_percent"] <= LIMIT_PERCENT for r in bulk)
    print(f"\nTarget (bulk loads, at most {LIMIT_PERCENT:g}%): {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"scale": args.scale, "table": args.table,
                                         "repeat": args.repeat, "results": results}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
