"""The soak: many cycles of "a batch of source changes, then `refresh-views`", at test scale.

    .venv/bin/python -m benchmarks.soak --cycles 200 --scale 0.2

What must hold over the cycles, and what is recorded for each:
- every `refresh-views` (the real console script) succeeds;
- each mart's size with its indexes stays within 1.5x a fresh build of the same rows: the
  fresh build is measured every `--fresh-every` cycles (the mart's rows copied into a scratch
  table with the mart's indexes); REFRESH CONCURRENTLY leaves dead rows for (auto)vacuum;
- read latency on an index lookup (per mart, median and p99 of a fixed set) stays flat;
- the run log stays within its retention (the soak uses a short one, `--log-retention`).
Writes benchmarks/results/soak-<time>.json and .png (sizes over cycles, against fresh).
`tests/test_soak.py` runs a short variant of the same loop.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

import psycopg2  # noqa: E402
from psycopg2 import sql  # noqa: E402

from bioloupe_views import definitions  # noqa: E402
from bioloupe_views.dev import synthetic  # noqa: E402
from bioloupe_views.dev.pgserver import ThrowawayServer  # noqa: E402

from benchmarks import record as record_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZE_LIMIT = 1.5
SCRATCH = "bioloupe_soak_fresh"


def _sizes(cur, part: str = "pg_total_relation_size") -> dict[str, int]:
    """Each mart's size: with its indexes (default), or one part (pg_relation_size: the
    heap; pg_indexes_size: the indexes)."""
    cur.execute(sql.SQL("SELECT c.relname, {}(c.oid) FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = %s AND c.relname = ANY(%s)").format(sql.SQL(part)),
                (definitions.MART_SCHEMA, list(definitions.marts())))
    return dict(cur.fetchall())


def _rows(cur) -> dict[str, int]:
    """Each mart's row count: the soak's changes delete more than they add to some marts."""
    counts = {}
    for mart in definitions.marts():
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(definitions.MART_SCHEMA, mart)))
        counts[mart] = cur.fetchone()[0]
    return counts


def fresh_sizes(cur) -> dict[str, int]:
    """Each mart's rows, built fresh with its indexes in a scratch schema: what a new build
    of the same data takes."""
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCRATCH)))
    sizes = {}
    for mart in definitions.marts():
        version = definitions.get(mart).latest
        cur.execute(sql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(
            sql.Identifier(SCRATCH, mart), sql.Identifier(definitions.MART_SCHEMA, mart)))
        for statement in version.index_statements(SCRATCH):
            cur.execute(statement)
        # Vacuumed like the mart, so both have their free-space and visibility maps: like
        # for like, which matters at test scale where those are a few percent of a mart.
        cur.execute(sql.SQL("VACUUM {}").format(sql.Identifier(SCRATCH, mart)))
        cur.execute("SELECT pg_total_relation_size(%s::regclass)", (f"{SCRATCH}.{mart}",))
        sizes[mart] = cur.fetchone()[0]
        cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SCRATCH, mart)))
    return sizes


def _lookups(cur, ids: dict[str, list]) -> dict[str, dict[str, float]]:
    """Milliseconds of an index lookup by drug per mart: median and p99 of the fixed ids."""
    result = {}
    for mart, values in ids.items():
        timings = []
        for value in values:
            t0 = time.perf_counter()
            cur.execute(sql.SQL("SELECT * FROM {} WHERE drug_id = %s").format(
                sql.Identifier(definitions.MART_SCHEMA, mart)), (value,))
            cur.fetchall()
            timings.append((time.perf_counter() - t0) * 1000)
        timings.sort()
        result[mart] = {"p50_ms": round(statistics.median(timings), 3),
                        "p99_ms": round(timings[int(0.99 * (len(timings) - 1))], 3)}
    return result


def run(dsn: str, cycles: int, retention: str = "20s", fresh_every: int = 20,
        log=print) -> dict:
    """The soak loop on a migrated database; returns the per-cycle record."""
    exe = Path(sys.executable).parent / "refresh-views"
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    ids = {}
    for mart in definitions.marts():
        cur.execute(sql.SQL("SELECT DISTINCT drug_id FROM {} ORDER BY drug_id LIMIT 50").format(
            sql.Identifier(definitions.MART_SCHEMA, mart)))
        ids[mart] = [r[0] for r in cur.fetchall()]
    record = {"cycles": [], "fresh": {0: fresh_sizes(cur)}, "failures": []}
    for cycle in range(1, cycles + 1):
        synthetic.mutate(conn)
        t0 = time.perf_counter()
        results = Path(tempfile.gettempdir()) / f"soak-{os.getpid()}.json"
        results.unlink(missing_ok=True)
        done = subprocess.run([str(exe), "--dsn", dsn, "--log-retention", retention,
                               "--json", str(results)], capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - t0
        upkeep = json.loads(results.read_text()) if results.exists() else {}
        if done.returncode != 0:
            record["failures"].append({"cycle": cycle, "output": done.stdout[-2000:] + done.stderr})
        cur.execute("SELECT count(*), coalesce(extract(epoch FROM now() - min(started_at)), 0)"
                    " FROM bioloupe_views.run")
        runs, oldest = cur.fetchone()
        entry = {"cycle": cycle, "seconds": round(seconds, 3), "exit": done.returncode,
                 "sizes": _sizes(cur), "heap": _sizes(cur, "pg_relation_size"),
                 "indexes": _sizes(cur, "pg_indexes_size"), "rows": _rows(cur),
                 "index_rebuilds": [r["mart"] for r in upkeep.get("index_rebuilds", [])
                                    if r["after"] is not None],
                 "heap_rewrites": {r["mart"]: r["seconds"]
                                   for r in upkeep.get("heap_rewrites", [])
                                   if r["after"] is not None},
                 "reads": _lookups(cur, ids), "runs_kept": runs,
                 "oldest_run_seconds": round(float(oldest), 1)}
        record["cycles"].append(entry)
        if cycle % fresh_every == 0 or cycle == cycles:
            record["fresh"][cycle] = fresh_sizes(cur)
        if cycle % 10 == 0 or cycle == cycles:
            log(f"cycle {cycle}: exit {done.returncode} in {seconds:.1f}s, runs kept {runs}")
    conn.close()
    record["ratios"] = ratios(record)
    return record


def ratios(record: dict) -> dict[str, dict[int, float]]:
    """Each mart's size over the fresh build's, at every cycle a fresh build was measured."""
    by_cycle = {e["cycle"]: e["sizes"] for e in record["cycles"]}
    result: dict[str, dict[int, float]] = {}
    for cycle, fresh in record["fresh"].items():
        if cycle == 0 or cycle not in by_cycle:
            continue
        for mart, size in fresh.items():
            result.setdefault(mart, {})[cycle] = round(by_cycle[cycle][mart] / size, 3)
    return result


def chart(record: dict, path: Path) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): chart skipped"
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    cycles = [e["cycle"] for e in record["cycles"]]
    for mart in definitions.marts():
        left.plot(cycles, [e["sizes"][mart] / 2**20 for e in record["cycles"]], label=mart)
        points = sorted(record["ratios"].get(mart, {}).items())
        right.plot([c for c, _ in points], [r for _, r in points], marker="o", label=mart)
    left.set_xlabel("cycle")
    left.set_ylabel("size with indexes, MiB")
    left.set_title("Mart sizes over the soak")
    left.legend(fontsize=7)
    right.axhline(SIZE_LIMIT, color="red", linestyle="--", linewidth=1, label=f"{SIZE_LIMIT}x")
    right.set_xlabel("cycle")
    right.set_ylabel("size / fresh build of the same rows")
    right.set_title("Against a fresh build")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--fresh-every", type=int, default=20)
    parser.add_argument("--log-retention", default="20s")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--publish", type=Path, default=None, help="also copy the chart here")
    args = parser.parse_args(argv)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    with ThrowawayServer() as server:
        dsn = synthetic.migrated_database(server, "soak", args.scale)
        t0 = time.perf_counter()
        record = run(dsn, args.cycles, args.log_retention, args.fresh_every)
        record["seconds"] = round(time.perf_counter() - t0, 1)
    record.update({"scale": args.scale, "date": datetime.now().astimezone().isoformat(),
                   "log_retention": args.log_retention})
    out = record_file.save(record, "soak", args.results, stamp)
    worst = max((r for m in record["ratios"].values() for r in m.values()), default=None)
    print(f"failures: {len(record['failures'])}; worst size / fresh: {worst}")
    rewrites = [t for c in record["cycles"] for t in c["heap_rewrites"].values()]
    rebuilds = sum(len(c["index_rebuilds"]) for c in record["cycles"])
    print(f"heap rewrites: {len(rewrites)} (longest {max(rewrites, default=0):.3f}s); "
          f"index rebuilds: {rebuilds}")
    png = out.with_suffix(".png")
    skipped = chart(record, png)
    print(skipped or f"chart: {png}")
    if not skipped and args.publish:
        args.publish.write_bytes(png.read_bytes())
    return 0 if not record["failures"] and worst is not None and worst <= SIZE_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
