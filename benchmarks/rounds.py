"""Alternating rounds for the figures the time targets compare.

On a 2-core machine the same refresh varies by 15% or more from one run to the next, so one
run of each side can show a gap that is only noise (a checks' share of 10% in one run, 30%
in the next). Each round runs every compared command once, in the same order, each after a
fresh batch of source changes and with no app reads; a target is judged on the medians.
"""

from __future__ import annotations

import statistics
from typing import Callable


def measure(count: int, runs: dict[str, Callable[[int], dict]], before_each: Callable[[], None],
            log) -> dict[str, list[dict]]:
    """Run each of `runs` once per round, `count` rounds; every run as its function returns
    it (a dict with "seconds", "server_cpu_seconds" and "exit_code")."""
    record: dict[str, list[dict]] = {name: [] for name in runs}
    for number in range(1, count + 1):
        for name, run in runs.items():
            before_each()
            outcome = run(number)
            record[name].append(outcome)
            log(f"  {number}/{count} {name}: exit {outcome.get('exit_code')} in "
                f"{outcome['seconds']:.1f}s, server CPU {outcome.get('server_cpu_seconds')}s")
    return record


def medians(record: dict[str, list[dict]], key: str = "seconds") -> dict[str, float]:
    """The median of `key` over each command's successful runs; a command with a failed run
    has no median, so no target is judged on it."""
    out = {}
    for name, outcomes in record.items():
        if outcomes and all(o.get("exit_code") == 0 for o in outcomes):
            out[name] = round(statistics.median(o[key] for o in outcomes), 3)
    return out
