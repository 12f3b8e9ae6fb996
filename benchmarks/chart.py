"""The results as one PNG: per-mart refresh cost against the floor, end-to-end wall time
against dbt, and read latency by phase. matplotlib comes with the `bench` extra; without it
the chart is skipped with a message."""

from __future__ import annotations

from pathlib import Path


def _short(name: str) -> str:
    return (name.replace("refresh-views ", "refresh-views\n").replace("(default threads)", "default")
            .replace("dbt build (first)", "dbt build\n(first)"))


def draw(results: dict, path: Path) -> str | None:
    """Write the chart; return None, or the reason it was skipped."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): chart skipped"

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [3, 2.2, 2.4]})
    fig.suptitle(f"bioloupe-views benchmark, scale {results['scale']:g} "
                 f"({results['date'][:10]}, {results['machine']['cpus']} CPUs, "
                 f"PostgreSQL {results['machine']['postgres'].split()[0]})", fontsize=12)

    marts = list(results["marts"])
    ax = axes[0]
    width = 0.26
    for i, (key, label) in enumerate((("floor_s", "floor (bare query)"),
                                      ("plain_s", "plain refresh"),
                                      ("concurrent_s", "concurrent refresh"))):
        values = [results["marts"][m][key] for m in marts]
        ax.bar([x + (i - 1) * width for x in range(len(marts))], values, width, label=label)
    ax.set_xticks(range(len(marts)))
    ax.set_xticklabels([m.replace("mv_", "") for m in marts], rotation=20, ha="right")
    ax.set_ylabel("seconds (median)")
    ax.set_title("Per mart: refresh against its floor")
    ax.legend()

    ax = axes[1]
    runs = [(_short(name), r["seconds"])
            for name, r in results["end_to_end"].items() if r.get("seconds") is not None]
    for label, scenario in (results.get("changed_only") or {}).items():
        if isinstance(scenario, dict) and scenario.get("run", {}).get("seconds") is not None:
            runs.append((f"--changed-only\n{label.split(' (')[0]}", scenario["run"]["seconds"]))
    ax.bar([n for n, _ in runs], [s for _, s in runs],
           color=["tab:green" if n.startswith("refresh") else "tab:olive" if n.startswith("--")
                  else "tab:gray" for n, _ in runs])
    for x, (_, s) in enumerate(runs):
        ax.annotate(f"{s:.1f}s", (x, s), ha="center", va="bottom")
    ax.set_ylabel("seconds (wall)")
    ax.set_title("End to end, with checks/tests")
    ax.tick_params(axis="x", labelsize=7, labelrotation=90)

    ax = axes[2]
    phases = [(p, r["all"]) for p, r in results["reads"].items() if r and r["all"]["reads"]]
    for i, (key, label) in enumerate((("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max"))):
        ax.bar([x + (i - 1) * width for x in range(len(phases))],
               [s[key] for _, s in phases], width, label=label)
    ax.axhline(100, color="red", linestyle="--", linewidth=1, label="100 ms")
    ax.set_yscale("log")
    ax.set_xticks(range(len(phases)))
    ax.set_xticklabels([p.replace("_", "\n").replace(": ", "\n") for p, _ in phases], fontsize=7,
                       rotation=90)
    ax.set_ylabel("read latency, ms (log)")
    ax.set_title("App reads while ...")
    ax.legend(fontsize=8)

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
