"""Run the benchmark: `.venv/bin/python -m benchmarks.run --scale 60` from the repository root.

Phases, all on one throwaway server, in one run:
 1. load the synthetic sources at --scale (scale 60 is production size) and ANALYZE them;
 2. create the source indexes `bioloupe-views doctor` reports missing, as a user would (and,
    when dbt runs, the two the seed's SQL needs), then `alembic upgrade head`;
 3. per mart: the floor (bare query), plain refresh and concurrent refresh, --repeat times;
 4. app reads while idle;
 5. `refresh-views` (the real console script: concurrent, with checks) with --threads 1, 2
    and the default, app reads running, wall time and the process's peak memory;
 6. `dbt build` of the seed's project twice (the first creates its tables), reads on dbt's
    tables during the second; dbt's tables compared with our marts row for row;
 7. --rounds alternating rounds, no reads, each run after a batch of source changes:
    refresh-views (default threads, --threads 2, --no-check), the floor of a concurrent run
    (the five REFRESH ... CONCURRENTLY statements alone, one session per core, longest
    ready mart first: concurrent_floor.py) and dbt build; the time targets use the medians
    (rounds.py);
 8. `refresh-views --changed-only` with the sources tracked: nothing changed, one table
    changed, a day of changes; reads running, the marts compared with their queries after;
 9. a side-by-side replacement of mv_development_programs (and its dependents), reads
    running, when bioloupe_views.replace offers it;
 10. app reads while idle again, to show how steady the machine was.
Every command run is timed by wall clock, its own CPU and the server's CPU (cpu.py).
Writes benchmarks/results/scale-<scale>-<timestamp>.json and .png, and checks the targets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py` works too
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from bioloupe_views import mart_graph as graph, migrate  # noqa: E402
from bioloupe_views.dev import synthetic  # noqa: E402
from bioloupe_views.db import connect  # noqa: E402
from bioloupe_views.dev.pgserver import ThrowawayServer  # noqa: E402

from benchmarks import (chart, changed_only, concurrent_floor, cpu, dbt_baseline,  # noqa: E402
                        marts, processes, readers, rounds)

ROOT = Path(__file__).resolve().parent.parent
DBNAME = "bench"
SERVER_SETTINGS = ("server_version", "shared_buffers", "work_mem", "maintenance_work_mem",
                   "max_parallel_workers_per_gather", "max_parallel_maintenance_workers", "jit",
                   "wal_level", "fsync", "synchronous_commit")
TARGETS = {"plain_ratio": 1.2, "concurrent_ratio": 2.5, "read_p99_vs_idle": 3.0,
           "slow_reads": 0, "cli_peak_rss_mb": 150, "vs_dbt": 0.8, "checks_share": 0.15,
           "unchanged_seconds": 1.0}
FLOOR = "REFRESH CONCURRENTLY statements alone"


def log(text: str) -> None:
    print(f"{datetime.now():%H:%M:%S} {text}", flush=True)


def machine(conn) -> dict:
    with conn.cursor() as cur:
        settings = {}
        for name in SERVER_SETTINGS:
            cur.execute("SELECT current_setting(%s)", (name,))
            settings[name] = cur.fetchone()[0]
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gb": round(mem_kb / 2**20, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "postgres": settings.pop("server_version"), "server_settings": settings}


def table_rows(conn) -> dict[str, int]:
    from bioloupe_views import contract
    counts = {}
    with conn.cursor() as cur:
        for table in contract.tables():
            cur.execute(f'SELECT count(*) FROM public."{table}"')
            counts[table] = cur.fetchone()[0]
    return counts


def refresh_views(env, work: Path, threads: int | None, timeout: float,
                  label: str | None = None, extra: list[str] | None = None,
                  postmaster: int | None = None) -> dict:
    exe = Path(sys.executable).parent / "refresh-views"
    label = label or f"refresh-views-threads-{threads or 'default'}"
    json_path = work / f"{label}.json"
    command = [str(exe), "--json", str(json_path)] + (["--threads", str(threads)] if threads else [])
    command += extra or []
    done = processes.run(command, env, ROOT, work / f"{label}.log", timeout, postmaster)
    result = dataclasses.asdict(done)
    result["command"] = " ".join(["refresh-views"] + command[1:]).replace(str(work) + "/", "")
    if json_path.exists():
        payload = json.loads(json_path.read_text())
        result["marts"] = {r["mart"]: {"status": r["status"], "mode": r["mode"],
                                       "seconds": r["seconds"], "rows": r["rows"]}
                           for r in payload["results"]}
    return result


def round_runs(env, work: Path, timeout: float, postmaster: int, dsn: str, conn, results: dict,
               dbt: Path | None) -> dict:
    """The runs the time targets compare, by name, each a function of the round."""
    def ours(threads=None, extra=None):
        return lambda n: refresh_views(env, work, threads, timeout, extra=extra,
                                       label=f"round-{n}-{threads or 'default'}-{len(extra or [])}",
                                       postmaster=postmaster)
    upstream = graph.load(conn).upstream
    one_at_a_time = {m: r["concurrent_s"] for m, r in results["marts"].items()}
    runs = {"refresh-views (default threads)": ours(),
            "refresh-views --threads 2": ours(2),
            "refresh-views --no-check": ours(extra=["--no-check"]),
            FLOOR: lambda n: concurrent_floor.measure(dsn, upstream, one_at_a_time, postmaster)}
    if dbt:
        runs["dbt build"] = lambda n: dataclasses.asdict(
            dbt_baseline.build(dbt, env, work, f"round-{n}-dbt-build", timeout, postmaster))
    return runs


def with_reads(dsn, queries, action):
    with readers.Reader(dsn, queries) as reader:
        outcome = action()
    return outcome, reader.result


def side_by_side(conn, dsn, queries) -> tuple[dict | None, dict | None]:
    try:
        from bioloupe_views import replace
    except ImportError:
        return {"skipped": "bioloupe_views.replace is not available"}, None
    version = marts.mart_versions(conn)["mv_development_programs"]

    def swap():
        swap_conn = connect(dsn)  # autocommit: build, then a swap that commits at once
        try:
            return dataclasses.asdict(replace.replace(
                swap_conn, "mv_development_programs", version, side_by_side=True))
        finally:
            swap_conn.close()
    return with_reads(dsn, queries, swap)


def evaluate(results: dict) -> list[dict]:
    checks = []

    def add(name, target, measured, met, note=""):
        checks.append({"target": name, "goal": target, "measured": measured, "met": met,
                       **({"note": note} if note else {})})

    for mart, m in results["marts"].items():
        add(f"{mart} plain refresh / floor", f"<= {TARGETS['plain_ratio']}x",
            m["plain_ratio"], m["plain_ratio"] <= TARGETS["plain_ratio"],
            f"{m['plain_vs_floor_and_indexes']:.2f}x the floor plus building its indexes")
        add(f"{mart} concurrent refresh / floor", f"<= {TARGETS['concurrent_ratio']}x",
            m["concurrent_ratio"], m["concurrent_ratio"] <= TARGETS["concurrent_ratio"])
    e2e = results["end_to_end"]
    timed = rounds.medians(results.get("rounds") or {})
    ours = timed.get("refresh-views (default threads)")
    theirs = timed.get("dbt build")
    if ours is not None and theirs is not None:
        goal = round(TARGETS["vs_dbt"] * theirs, 1)
        floor = timed.get(FLOOR)
        add(f"refresh-views wall time <= {TARGETS['vs_dbt']}x dbt build", f"<= {goal}s", ours,
            ours <= goal, f"{ours / theirs:.2f}x dbt build"
            + (f"; the REFRESH CONCURRENTLY statements alone: {floor / theirs:.2f}x" if floor else ""))
    no_check = timed.get("refresh-views --no-check")
    if ours and no_check is not None:
        share = round(max(0.0, ours - no_check) / ours, 3)
        add("checks' share of the run (default minus --no-check)",
            f"<= {TARGETS['checks_share']:.0%}", f"{share:.0%}", share <= TARGETS["checks_share"])
    for label, sc in (results.get("changed_only") or {}).items():
        if not isinstance(sc, dict) or "run" not in sc:
            continue
        off = sum(d["extra"] + d["missing"] for d in sc["differences"].values())
        add(f"--changed-only after {label}: rows equal the marts' queries", "0 rows off", off,
            off == 0 and sc["run"]["exit_code"] == 0)
        if label == "nothing changed":
            seconds = sc["run"]["seconds"]
            add("--changed-only with nothing changed", f"< {TARGETS['unchanged_seconds']}s",
                seconds, seconds < TARGETS["unchanged_seconds"])
    idle_p99 = results["reads"]["idle"]["all"]["p99_ms"]
    for phase in ("refresh-views_threads_1", "refresh-views_threads_2", "refresh-views_default"):
        reads = results["reads"].get(phase)
        if reads:
            slow = reads["all"]["over_100ms"]
            add(f"reads during {phase}: none over 100 ms", "0", slow, slow == 0)
            p99 = reads["all"]["p99_ms"]
            add(f"reads during {phase}: p99 <= 3x idle p99",
                f"<= {round(TARGETS['read_p99_vs_idle'] * idle_p99, 3)} ms", p99,
                p99 <= TARGETS["read_p99_vs_idle"] * idle_p99)
    for name, r in e2e.items():
        if name.startswith("refresh-views"):
            add(f"{name} peak memory", f"< {TARGETS['cli_peak_rss_mb']} MB", r["peak_rss_mb"],
                r["peak_rss_mb"] < TARGETS["cli_peak_rss_mb"])
    return checks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="synthetic data size: 1 is ~1/60 of production, 60 is production")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mart measurement")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of the runs the time targets compare")
    parser.add_argument("--idle-seconds", type=float, default=15, help="idle read window")
    parser.add_argument("--no-dbt", action="store_true", help="skip the dbt baseline")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--publish", type=Path, default=None,
                        help="also copy the chart here (for the README)")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="per command, seconds")
    args = parser.parse_args(argv)

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    work = args.results / f"scale-{args.scale:g}-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    command = ".venv/bin/python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    results: dict = {"scale": args.scale, "date": datetime.now().astimezone().isoformat(),
                     "command": command.strip(), "repeat": args.repeat, "load_average": {}}
    dbt = None if args.no_dbt else dbt_baseline.executable()
    if dbt is None and not args.no_dbt:
        log("dbt is not installed (pip install -e '.[bench]'): the dbt baseline is skipped")

    server = ThrowawayServer()
    log("starting a throwaway PostgreSQL server")
    server.start()
    try:
        dsn = server.create_database(DBNAME)
        conn = connect(dsn)
        results["machine"] = machine(conn)
        results["load_average"]["start"] = os.getloadavg()

        log(f"loading synthetic sources at scale {args.scale:g}")
        t0 = time.perf_counter()
        synthetic.load(conn, args.scale)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
        results["load"] = {"seconds": round(load_s, 3),
                           "analyze_seconds": round(time.perf_counter() - t0, 3),
                           "rows": table_rows(conn)}
        log(f"  loaded in {load_s:.1f}s")

        log("creating the source indexes `bioloupe-views doctor` reports missing"
            + (" (and the two the seed's SQL needs, for dbt)" if dbt else ""))
        results["source_indexes"] = marts.create_source_indexes(
            conn, dbt_baseline.SEED_SQL_INDEXES if dbt else [], log)

        log("alembic upgrade head (creates and populates the marts)")
        t0 = time.perf_counter()
        migrate.upgrade(dsn)
        results["initial_build_seconds"] = round(time.perf_counter() - t0, 3)
        order = graph.load(conn).order
        results["plan_source_indexes"] = marts.plan_source_indexes(conn, order)

        # The per-mart figures compare PostgreSQL's refresh with the bare query, both with
        # the server's settings; refresh_mart's own settings apply to the end-to-end runs.
        results["refresh_mart_settings"] = marts.refresh_settings(conn)
        log(f"per mart: floor, plain and concurrent refresh, {args.repeat} time(s)")
        mutations = []

        def mutate():
            t0 = time.perf_counter()
            synthetic.mutate(conn)
            with conn.cursor() as cur:
                cur.execute("ANALYZE")
            mutations.append(round(time.perf_counter() - t0, 3))
        results["marts"] = marts.measure(conn, order, args.repeat, log, before_round=mutate)
        conn.close()
        conn = connect(dsn)
        results["load_average"]["after_marts"] = os.getloadavg()

        queries = readers.build_queries(conn)
        results["reads"] = {}
        log(f"app reads, idle, {args.idle_seconds:g}s")
        results["reads"]["idle"] = readers.idle(dsn, queries, args.idle_seconds)

        env = processes.user_env(server, DBNAME)
        postmaster = cpu.postmaster_pid(server.datadir)
        results["end_to_end"] = {}
        for threads, name, phase in ((1, "refresh-views --threads 1", "refresh-views_threads_1"),
                                     (2, "refresh-views --threads 2", "refresh-views_threads_2"),
                                     (None, "refresh-views (default threads)", "refresh-views_default")):
            mutate()
            log(f"{name}, after a batch of source changes, with app reads")
            outcome, reads = with_reads(dsn, queries, lambda t=threads: refresh_views(
                env, work, t, args.timeout, postmaster=postmaster))
            results["end_to_end"][name] = outcome
            results["reads"][phase] = reads
            log(f"  exit {outcome['exit_code']} in {outcome['seconds']:.1f}s, "
                f"peak RSS {outcome['peak_rss_mb']} MB; reads p99 {reads['all']['p99_ms']} ms, "
                f"max {reads['all']['max_ms']} ms")
        if dbt:
            mutate()
            log("dbt build of the seed's project (first build: creates dbt_bench's tables)")
            first = dataclasses.asdict(dbt_baseline.build(dbt, env, work, "dbt-build-1", args.timeout,
                                                            postmaster))
            results["end_to_end"]["dbt build (first)"] = first
            log(f"  exit {first['exit_code']} in {first['seconds']:.1f}s")
            if first["exit_code"] == 0:
                dbt_queries = readers.build_queries(conn, schema=dbt_baseline.SCHEMA)
                mutate()
                log("dbt build again, after a batch of source changes, with app reads on dbt's tables")
                second, reads = with_reads(dsn, dbt_queries, lambda: dataclasses.asdict(
                    dbt_baseline.build(dbt, env, work, "dbt-build-2", args.timeout, postmaster)))
                results["end_to_end"]["dbt build"] = second
                results["reads"]["dbt_build"] = reads
                log(f"  exit {second['exit_code']} in {second['seconds']:.1f}s; reads p99 "
                    f"{reads['all']['p99_ms']} ms, max {reads['all']['max_ms']} ms")
                log("refresh-views again (not timed), then dbt's tables against our marts, row for row")
                sync = refresh_views(env, work, None, args.timeout, label="refresh-views-sync")
                if sync["exit_code"] != 0:
                    log(f"  refresh-views failed: {sync['output_tail']}")
                results["dbt_matches_marts"] = dbt_baseline.compare(conn)
                log(f"  {results['dbt_matches_marts']}")
        else:
            results["end_to_end"]["dbt build"] = {"skipped": "dbt not installed or --no-dbt"}

        runs = round_runs(env, work, args.timeout, postmaster, dsn, conn, results, dbt)
        log(f"alternating rounds, no reads: {', '.join(runs)}; {args.rounds} time(s)")
        results["rounds"] = rounds.measure(args.rounds, runs, mutate, log)
        results["load_average"]["after_rounds"] = os.getloadavg()

        if changed_only.supported():
            log("--changed-only: tracking the sources, then a full refresh to start from")
            tracked = changed_only.track_sources(env)
            if tracked.returncode != 0:
                log(f"  track-sources failed: {tracked.stdout}{tracked.stderr}")
            refresh_views(env, work, None, args.timeout, label="refresh-views-before-changed-only")

            def change_one_table():
                with conn.cursor() as cur:
                    cur.execute(changed_only.ONE_TABLE_CHANGE)

            def refresh_changed(label):
                slug = "".join(c if c.isalnum() else "-" for c in label)
                return refresh_views(env, work, None, args.timeout, label=f"changed-only-{slug}",
                                     extra=["--changed-only"], postmaster=postmaster)
            scenarios = {"nothing changed": lambda: None,
                         f"one table changed ({changed_only.ONE_TABLE})": change_one_table,
                         "a day of changes": mutate}
            results["changed_only"] = changed_only.measure(
                conn, scenarios, refresh_changed, lambda action: with_reads(dsn, queries, action))
            for label, scenario in results["changed_only"].items():
                results["reads"][f"changed-only: {label}"] = scenario["reads"]
                log(f"  {label}: exit {scenario['run']['exit_code']} in "
                    f"{scenario['run']['seconds']:.1f}s; {scenario['statuses']}; "
                    f"rows off: {sum(d['extra'] + d['missing'] for d in scenario['differences'].values())}")
        else:
            results["changed_only"] = {"skipped": "refresh-views has no --changed-only"}

        log("side-by-side replacement of mv_development_programs, with app reads")
        swap, reads = side_by_side(conn, dsn, queries)
        results["side_by_side"] = swap
        if reads:
            results["reads"]["side_by_side_swap"] = reads
            log(f"  swap transaction {swap['swap_seconds']:.3f}s; "
                f"reads max {reads['all']['max_ms']} ms")

        log(f"app reads, idle again, {args.idle_seconds:g}s")
        results["reads"]["idle_after"] = readers.idle(dsn, queries, args.idle_seconds)
        results["load_average"]["end"] = os.getloadavg()
        results["source_change_batches_seconds"] = mutations
        conn.close()
    finally:
        server.stop()

    results["targets"] = evaluate(results)
    out = args.results / f"scale-{args.scale:g}-{stamp}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"results: {out}")
    png = out.with_suffix(".png")
    skipped = chart.draw(results, png)
    if skipped:
        log(skipped)
    else:
        log(f"chart: {png}")
        if args.publish:
            args.publish.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, args.publish)
            log(f"chart copied to {args.publish}")
    for t in results["targets"]:
        log(f"  {'met   ' if t['met'] else 'MISSED'} {t['target']}: {t['measured']} (goal {t['goal']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
