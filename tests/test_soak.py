"""A short soak: cycles of "a batch of source changes, then `refresh-views`" on one
database (benchmarks/soak.py runs 200). Every cycle succeeds, the marts stay within 1.5x a
fresh build of the same rows, and the run log within its retention."""

from __future__ import annotations

from benchmarks import soak


def test_short_soak_stays_bounded(dsn):
    record = soak.run(dsn, cycles=12, retention="3s", fresh_every=6, log=lambda _: None)
    assert record["failures"] == []
    ratios = [r for per_mart in record["ratios"].values() for r in per_mart.values()]
    assert ratios and max(ratios) <= soak.SIZE_LIMIT, record["ratios"]
    # Each run prunes what is older than the retention before it starts.
    last = record["cycles"][-1]
    assert last["runs_kept"] < 12 and last["oldest_run_seconds"] < 3 + 15, last
