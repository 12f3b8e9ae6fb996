"""Render a results JSON as the README's Performance tables:
`.venv/bin/python -m benchmarks.markdown benchmarks/results/scale-60-....json`.
Every figure comes from the file, so the README quotes only what a run measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/markdown.py` works too
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import rounds  # noqa: E402


def _s(value) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _mb(value) -> str:
    return "-" if value is None else f"{value} MB"


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Scale {results['scale']:g}{' (production size)' if results['scale'] >= 60 else ''}, "
        f"{results['date'][:10]}, "
        f"{m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB, PostgreSQL "
        f"{m['postgres'].split()[0]} (throwaway server: "
        + ", ".join(f"{k}={v}" for k, v in m["server_settings"].items()) + ").",
        f"Command: `{results['command']}`. Load: {_s(results['load']['seconds'])} "
        f"(+ ANALYZE {_s(results['load']['analyze_seconds'])}); first build "
        f"(`alembic upgrade head`): {_s(results['initial_build_seconds'])}.",
        "",
        "| mart | rows | floor (bare query) | its indexes on the floor | plain refresh | concurrent refresh |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mart, r in results["marts"].items():
        lines.append(f"| {mart} | {r['rows']:,} | {_s(r['floor_s'])} | "
                     f"{_s(r.get('floor_indexes_s'))} | {_s(r['plain_s'])} "
                     f"({r['plain_ratio']:.2f}x) | {_s(r['concurrent_s'])} "
                     f"({r['concurrent_ratio']:.2f}x) |")
    lines += ["", "| end to end | wall | client CPU | server CPU | peak RSS |",
              "|---|---:|---:|---:|---:|"]
    for name, r in results["end_to_end"].items():
        if r.get("seconds") is not None:
            lines.append(f"| {name} | {_s(r['seconds'])} | {_s(r.get('cpu_seconds'))} | "
                         f"{_s(r.get('server_cpu_seconds'))} | {_mb(r.get('peak_rss_mb'))} |")
    timed = results.get("rounds") or {}
    if timed:
        wall, server = rounds.medians(timed), rounds.medians(timed, "server_cpu_seconds")
        count = max(len(v) for v in timed.values())
        lines += ["", f"| alternating rounds ({count}, no reads) | wall, median | each round "
                      "| server CPU, median |", "|---|---:|---|---:|"]
        for name, outcomes in timed.items():
            each = ", ".join(_s(o["seconds"]) if o.get("exit_code") == 0 else "failed"
                             for o in outcomes)
            lines.append(f"| {name} | {_s(wall.get(name))} | {each} | {_s(server.get(name))} |")
    scenarios = results.get("changed_only") or {}
    if "skipped" not in scenarios and scenarios:
        lines += ["", "| refresh-views --changed-only after ... | wall | client CPU | server CPU "
                      "| refreshed | unchanged | rows off afterwards |",
                  "|---|---:|---:|---:|---|---|---:|"]
        for label, sc in scenarios.items():
            run = sc["run"]
            done = [m for m, st in sc["statuses"].items() if st != "unchanged"]
            kept = [m for m, st in sc["statuses"].items() if st == "unchanged"]
            off = sum(d["extra"] + d["missing"] for d in sc["differences"].values())
            lines.append(f"| {label} | {_s(run['seconds'])} | {_s(run.get('cpu_seconds'))} | "
                         f"{_s(run.get('server_cpu_seconds'))} | {', '.join(done) or '-'} | "
                         f"{', '.join(kept) or '-'} | {off} |")
    lines += ["", "| app reads while ... | reads | p50 ms | p99 ms | max ms | > 100 ms |",
              "|---|---:|---:|---:|---:|---:|"]
    for phase, r in results["reads"].items():
        a = r["all"]
        lines.append(f"| {phase} | {a['reads']} | {_ms(a['p50_ms'])} | {_ms(a['p99_ms'])} | "
                     f"{_ms(a['max_ms'])} | {a['over_100ms']} |")
    swap = results.get("side_by_side") or {}
    if swap.get("swap_seconds") is not None:
        reads = (results["reads"].get("side_by_side_swap") or {}).get("all") or {}
        longest = (f"; the longest read meanwhile took {_ms(reads['max_ms'])} ms"
                   if reads.get("max_ms") is not None else "")
        lines += ["", f"Side-by-side replacement of mv_development_programs (and its 2 "
                      f"dependents): built in {_s(swap['build_seconds'])}, swap transaction "
                      f"{swap['swap_seconds'] * 1000:.0f} ms (lock requests to commit){longest}."]
    lines += ["", "| target | goal | measured | | note |", "|---|---|---:|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['goal']} | {t['measured']} | "
                     f"{'met' if t['met'] else '**missed**'} | {t.get('note', '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())))
