"""The publish strategies side by side with dbt build, at scale, in one run:

    .venv/bin/python -m benchmarks.strategies --scale 60 --rounds 3

On its own throwaway server (sources, the source indexes `doctor` asks for, `alembic upgrade
head`, dbt's first build), then:
1. alternating rounds, no app reads, each run after a fresh batch of source changes:
   `refresh-views` with --strategy concurrent, swap and auto, then `dbt build`; each timed
   by wall clock and server CPU, with the WAL it wrote (pg_current_wal_lsn) and the peak
   extra disk of the database meanwhile (pg_database_size, sampled); per mart, its
   strategy, rows, changed share and how long its swap held its exclusive locks;
2. the app's reads during one run of each strategy (and during dbt build, on its tables):
   p99, max, reads over 100 ms;
3. --changed-only after one source table changed, for each strategy;
4. rows: after the last run of each strategy, every mart against the seed's SQL
   (tests/reference/) and, after a final dbt build, dbt's tables against the marts.
Targets are judged on the medians of the rounds. Results go to
benchmarks/results/strategies-<time>.json, and a Markdown summary to the log.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from bioloupe_views import definitions, migrate  # noqa: E402
from bioloupe_views.db import connect  # noqa: E402
from bioloupe_views.dev import synthetic  # noqa: E402
from bioloupe_views.dev.pgserver import ThrowawayServer  # noqa: E402

from benchmarks import changed_only, cpu, dbt_baseline, marts, processes, readers  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "reference"
DBNAME = "bench"
STRATEGIES = ("concurrent", "swap", "auto")
TARGETS = {"swap_vs_dbt": 0.7, "auto_vs_best": 1.05, "slow_read_ms": 100.0, "lock_p99_ms": 50.0}


def log(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", flush=True)


class DiskPeak:
    """The database's size, sampled every 0.2 s while a run goes: its peak over the start."""

    def __init__(self, dsn: str):
        self.dsn, self.stop, self.peak = dsn, threading.Event(), 0

    def __enter__(self):
        self.conn = connect(self.dsn)
        self.start = self._size()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _size(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            return cur.fetchone()[0]

    def _sample(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self._size())
            time.sleep(0.2)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self._size())
        self.conn.close()
        self.extra_mb = round((self.peak - self.start) / 2 ** 20, 1)


def _lsn(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        return int(cur.fetchone()[0])


def measured(conn, dsn, action) -> dict:
    """Run `action()` (-> dict with seconds, server_cpu_seconds, exit_code), adding the WAL
    it wrote and the database's peak extra disk meanwhile."""
    before = _lsn(conn)
    with DiskPeak(dsn) as disk:
        outcome = action()
    outcome["wal_mb"] = round((_lsn(conn) - before) / 2 ** 20, 1)
    outcome["peak_extra_disk_mb"] = disk.extra_mb
    return outcome


def ours(env, work: Path, postmaster: int, timeout: float, label: str, strategy: str,
         extra: list[str] | None = None) -> dict:
    exe = Path(sys.executable).parent / "refresh-views"
    json_path = work / f"{label}.json"
    command = [str(exe), "--json", str(json_path), "--strategy", strategy, *(extra or [])]
    done = dataclasses.asdict(processes.run(command, env, ROOT, work / f"{label}.log", timeout,
                                            postmaster))
    done["command"] = " ".join(["refresh-views", *command[1:]]).replace(str(work) + "/", "")
    if json_path.exists():
        payload = json.loads(json_path.read_text())
        done["marts"] = {r["mart"]: {k: r.get(k) for k in (
            "status", "mode", "strategy", "strategy_reason", "rows", "seconds", "changed_share",
            "swap_lock_seconds", "error")} for r in payload["results"]}
    return done


def seed_differences(conn) -> dict[str, dict[str, int]]:
    """Each mart against the seed's SQL on the same sources, as multisets."""
    found = {}
    with conn.cursor() as cur:
        cur.execute("SET search_path = public, pg_temp")  # the seed's SQL names bare tables
        order = ["mv_development_programs",
                 *[m for m in definitions.marts() if m != "mv_development_programs"]]
        for mart in order:
            cur.execute(f"DROP TABLE IF EXISTS ref_{mart}")
            cur.execute(f"CREATE TEMP TABLE ref_{mart} AS {(REFERENCE / f'{mart}.sql').read_text()}")
        for mart in order:
            cur.execute(f"SELECT (SELECT count(*) FROM (SELECT * FROM public.{mart} EXCEPT ALL"
                        f" SELECT * FROM ref_{mart}) a), (SELECT count(*) FROM (SELECT * FROM"
                        f" ref_{mart} EXCEPT ALL SELECT * FROM public.{mart}) b),"
                        f" (SELECT count(*) FROM ref_{mart})")
            extra, missing, total = cur.fetchone()
            found[mart] = {"extra": extra, "missing": missing, "rows": total}
        for mart in order:
            cur.execute(f"DROP TABLE ref_{mart}")
        cur.execute("SET search_path = pg_catalog, pg_temp")
    return found


def _median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def evaluate(results: dict) -> list[dict]:
    targets = []

    def add(name, goal, measured_value, met, note=""):
        targets.append({"target": name, "goal": goal, "measured": measured_value, "met": met,
                        **({"note": note} if note else {})})

    rounds = results["rounds"]
    ok = {name: [r for r in runs if r.get("exit_code") == 0] for name, runs in rounds.items()}
    wall = {name: _median(r["seconds"] for r in runs) for name, runs in ok.items()
            if len(runs) == len(rounds[name])}
    cpu_s = {name: _median(r.get("server_cpu_seconds") for r in runs) for name, runs in ok.items()}
    dbt, swap, conc, auto = (wall.get("dbt build"), wall.get("swap"), wall.get("concurrent"),
                             wall.get("auto"))
    if dbt and swap:
        goal = round(TARGETS["swap_vs_dbt"] * dbt, 1)
        add(f"--strategy swap wall time <= {TARGETS['swap_vs_dbt']}x dbt build", f"<= {goal}s",
            swap, swap <= goal, f"{swap / dbt:.2f}x dbt build")
    if cpu_s.get("dbt build") and cpu_s.get("swap"):
        add("--strategy swap server CPU < dbt build's", f"< {cpu_s['dbt build']}s",
            cpu_s["swap"], cpu_s["swap"] < cpu_s["dbt build"])
    if auto and swap and conc:
        best = min(swap, conc)
        add("--strategy auto <= 1.05x the faster of concurrent and swap",
            f"<= {round(TARGETS['auto_vs_best'] * best, 1)}s", auto,
            auto <= TARGETS["auto_vs_best"] * best, f"{auto / best:.2f}x")
    reads = results.get("reads", {}).get("swap")
    if reads:
        slow = reads["all"]["over_100ms"]
        add("reads during a swap run: none over 100 ms", "0", slow, slow == 0,
            f"p99 {reads['all']['p99_ms']} ms, max {reads['all']['max_ms']} ms")
    locks = sorted(1000 * m["swap_lock_seconds"] for runs in rounds.values() for r in runs
                   for m in (r.get("marts") or {}).values() if m.get("swap_lock_seconds"))
    if locks:
        p99 = locks[min(len(locks) - 1, int(round(0.99 * (len(locks) - 1))))]
        add("swap exclusive-lock hold, p99", f"<= {TARGETS['lock_p99_ms']:g} ms",
            round(p99, 1), p99 <= TARGETS["lock_p99_ms"], f"{len(locks)} swaps, max {locks[-1]:.1f} ms")
    for strategy, diff in (results.get("seed_differences") or {}).items():
        off = sum(d["extra"] + d["missing"] for d in diff.values())
        add(f"rows after --strategy {strategy} equal the seed's SQL", "0 rows off", off, off == 0)
    if results.get("dbt_matches_marts"):
        same = all(d["identical"] for d in results["dbt_matches_marts"].values())
        add("dbt's tables equal the marts", "identical", same, same)
    return targets


def summary(results: dict) -> str:
    lines = [f"Scale {results['scale']:g}, {results['date'][:10]}, {results['machine']}", "",
             "| run | wall (median) | server CPU | WAL | peak extra disk |", "|---|---|---|---|---|"]
    for name, runs in results["rounds"].items():
        lines.append(f"| {name} | {_median(r['seconds'] for r in runs)}s | "
                     f"{_median(r.get('server_cpu_seconds') for r in runs)}s | "
                     f"{_median(r.get('wal_mb') for r in runs)} MB | "
                     f"{_median(r.get('peak_extra_disk_mb') for r in runs)} MB |")
    lines += ["", "| reads during | p99 | max | over 100 ms |", "|---|---|---|---|"]
    for name, reads in (results.get("reads") or {}).items():
        lines.append(f"| {name} | {reads['all']['p99_ms']} ms | {reads['all']['max_ms']} ms | "
                     f"{reads['all']['over_100ms']} |")
    lines += ["", "| --changed-only, one table changed | wall | statuses |", "|---|---|---|"]
    for name, run in (results.get("changed_only") or {}).items():
        statuses = ", ".join(f"{m}: {v['status']}/{v['mode']}" for m, v in (run.get("marts") or {}).items())
        lines.append(f"| {name} | {run['seconds']}s | {statuses} |")
    lines += ["", "| target | goal | measured | met |", "|---|---|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['goal']} | {t['measured']}"
                     f"{' (' + t['note'] + ')' if t.get('note') else ''} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.strategies", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--seed-check", action=argparse.BooleanOptionalAction, default=True,
                        help="compare the marts with the seed's SQL after each strategy's run "
                             "(minutes per strategy at scale 60: its per-drug LATERALs)")
    args = parser.parse_args(argv)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    work = args.results / f"strategies-{args.scale:g}-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    dbt = dbt_baseline.executable()
    results: dict = {"scale": args.scale, "date": datetime.now().astimezone().isoformat(),
                     "command": "python -m benchmarks.strategies " + " ".join(argv or sys.argv[1:])}
    server = ThrowawayServer()
    log("starting a throwaway PostgreSQL server")
    server.start()
    try:
        dsn = server.create_database(DBNAME)
        conn = connect(dsn)
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version'), "
                        "current_setting('max_parallel_workers_per_gather')")
            version, parallel = cur.fetchone()
        results["machine"] = (f"PostgreSQL {version}, {__import__('os').cpu_count()} cores, "
                              f"max_parallel_workers_per_gather {parallel}")
        log(f"loading synthetic sources at scale {args.scale:g}")
        synthetic.load(conn, args.scale)
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
        marts.create_source_indexes(conn, dbt_baseline.SEED_SQL_INDEXES if dbt else [], log)
        log("alembic upgrade head")
        migrate.upgrade(dsn)
        env = processes.user_env(server, DBNAME)
        postmaster = cpu.postmaster_pid(server.datadir)

        def mutate():
            synthetic.mutate(conn)
            with conn.cursor() as cur:
                cur.execute("ANALYZE")

        if dbt:
            log("dbt build, first (creates dbt_bench's tables)")
            dbt_baseline.build(dbt, env, work, "dbt-first", args.timeout, postmaster)
        log("a concurrent run, so that auto has a measured share of changed rows")
        mutate()
        ours(env, work, postmaster, args.timeout, "warm-up", "concurrent")

        runs = {s: (lambda n, s=s: ours(env, work, postmaster, args.timeout, f"round-{n}-{s}", s))
                for s in STRATEGIES}
        if dbt:
            runs["dbt build"] = lambda n: dataclasses.asdict(
                dbt_baseline.build(dbt, env, work, f"round-{n}-dbt", args.timeout, postmaster))
        results["rounds"] = {name: [] for name in runs}
        for n in range(1, args.rounds + 1):
            for name, run in runs.items():
                mutate()
                outcome = measured(conn, dsn, lambda r=run: r(n))
                results["rounds"][name].append(outcome)
                log(f"  {n}/{args.rounds} {name}: exit {outcome['exit_code']} in "
                    f"{outcome['seconds']:.1f}s, server CPU {outcome['server_cpu_seconds']}s, "
                    f"WAL {outcome['wal_mb']} MB, disk +{outcome['peak_extra_disk_mb']} MB")

        queries = readers.build_queries(conn)
        results["reads"] = {"idle": readers.idle(dsn, queries, 10)}
        for strategy in STRATEGIES:
            mutate()
            log(f"app reads during --strategy {strategy}")
            with readers.Reader(dsn, queries) as reader:
                outcome = ours(env, work, postmaster, args.timeout, f"reads-{strategy}", strategy)
            results["reads"][strategy] = reader.result
            results.setdefault("read_runs", {})[strategy] = outcome
            log(f"  exit {outcome['exit_code']} in {outcome['seconds']:.1f}s; reads p99 "
                f"{reader.result['all']['p99_ms']} ms, max {reader.result['all']['max_ms']} ms, "
                f"over 100 ms: {reader.result['all']['over_100ms']}")
            if args.seed_check:
                results.setdefault("seed_differences", {})[strategy] = seed_differences(conn)
        if dbt:
            mutate()
            dbt_queries = readers.build_queries(conn, schema=dbt_baseline.SCHEMA)
            with readers.Reader(dsn, dbt_queries) as reader:
                dbt_baseline.build(dbt, env, work, "reads-dbt", args.timeout, postmaster)
            results["reads"]["dbt build"] = reader.result
            # The same sources: dbt's tables (the seed's SQL) against what a swap publishes.
            results["sync_run"] = ours(env, work, postmaster, args.timeout, "sync", "swap")
            results["dbt_matches_marts"] = dbt_baseline.compare(conn)

        log("--changed-only after one source table changed, for each strategy")
        changed_only.track_sources(env)
        ours(env, work, postmaster, args.timeout, "changed-only-base", "concurrent")
        results["changed_only"] = {}
        for strategy in STRATEGIES:
            with conn.cursor() as cur:
                cur.execute(changed_only.ONE_TABLE_CHANGE)
            outcome = ours(env, work, postmaster, args.timeout, f"changed-only-{strategy}",
                           strategy, ["--changed-only"])
            if args.seed_check:
                outcome["differences"] = changed_only.differences(conn)
            results["changed_only"][f"--strategy {strategy}"] = outcome
            log(f"  {strategy}: exit {outcome['exit_code']} in {outcome['seconds']:.1f}s")
        conn.close()
    finally:
        server.stop()
    results["targets"] = evaluate(results)
    out = args.results / f"strategies-{args.scale:g}-{stamp}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"results: {out}")
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
