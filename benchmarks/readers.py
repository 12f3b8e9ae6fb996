"""The app's reads, timed: a reader process on its own connection runs the typical queries
against the marts while something else (idle, refresh-views, dbt build, a swap) happens.

The reader is a separate process, so the benchmark's own Python work never delays its
queries and its timing. It paces itself (a short pause between queries, like an app under
steady load rather than a flood that would itself saturate a 2-core machine), warms up on
every query once before it reports ready, and stops when told or at its deadline.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

SLOW_MS = 100.0
PAUSE_SECONDS = 0.005
IDS_PER_KEY = 200
SLOWEST = 5  # the slowest reads are kept, with when they happened, to explain outliers

# The app's typical queries, per mart: (name, key column, extra SQL after the WHERE).
# "landscape_top20" is the top of a disease's competitive landscape.
APP_QUERIES = {
    "mv_development_programs": [("by_drug", "drug_id", ""), ("by_disease", "disease_id", "")],
    "mv_drug_trials": [("by_drug", "drug_id", ""), ("by_trial", "clinical_trial_id", "")],
    "mv_efficacy_evidence": [("by_drug", "drug_id", ""), ("by_disease", "disease_id", "")],
    "mv_competitive_landscape": [
        ("by_drug", "drug_id", ""), ("by_disease", "disease_id", ""),
        ("landscape_top20", "disease_id", " ORDER BY highest_phase_rank DESC LIMIT 20")],
    "mv_drug_pipeline": [("by_drug", "drug_id", "")],
}


@dataclass(frozen=True)
class Query:
    label: str        # mart/query
    text: str         # SQL with one %s
    param: int


def build_queries(conn, schema: str = "public", seed: int = 7) -> list[Query]:
    """Interleaved queries over every mart and query kind, with ids sampled from the marts
    themselves (so lookups find rows, as the app's do)."""
    per_kind: list[list[Query]] = []
    with conn.cursor() as cur:
        for mart, kinds in APP_QUERIES.items():
            for name, column, tail in kinds:
                # A fixed pseudo-random sample, drawn in the database (the id lists are big).
                cur.execute(sql.SQL("SELECT {col} FROM (SELECT DISTINCT {col} FROM {rel}"
                                    " WHERE {col} IS NOT NULL) ids ORDER BY md5({col}::text || %s)"
                                    " LIMIT %s").format(col=sql.Identifier(column),
                                                        rel=sql.Identifier(schema, mart)),
                            (str(seed), IDS_PER_KEY))
                ids = [r[0] for r in cur.fetchall()]
                text = sql.SQL("SELECT * FROM {rel} WHERE {col} = %s").format(
                    rel=sql.Identifier(schema, mart), col=sql.Identifier(column)).as_string(conn)
                per_kind.append([Query(f"{mart}/{name}", text + tail, i) for i in ids])
    queries = []
    for round_ in range(IDS_PER_KEY):
        queries.extend(kind[round_] for kind in per_kind if round_ < len(kind))
    return queries


def _percentile(sorted_ms: list[float], q: float) -> float | None:
    if not sorted_ms:
        return None
    rank = max(1, -(-len(sorted_ms) * q // 100))  # nearest rank
    return sorted_ms[int(rank) - 1]


def summarize(samples: list[float], errors: int = 0) -> dict:
    ordered = sorted(samples)
    return {
        "reads": len(ordered),
        "p50_ms": _round(_percentile(ordered, 50)),
        "p99_ms": _round(_percentile(ordered, 99)),
        "max_ms": _round(ordered[-1] if ordered else None),
        "over_100ms": sum(ms > SLOW_MS for ms in ordered),
        "errors": errors,
    }


def _round(value):
    return None if value is None else round(value, 3)


def _reader(dsn, queries, ready, stop, results, max_seconds):
    conn = psycopg2.connect(dsn, application_name="bench-reader")
    conn.autocommit = True
    cur = conn.cursor()
    for q in {q.label: q for q in queries}.values():  # warm the caches and plans
        cur.execute(q.text, (q.param,))
        cur.fetchall()
    samples: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    slowest: list[tuple[float, float, str, int]] = []  # (ms, seconds since ready, label, id)
    first_error = None
    ready.set()
    started = time.monotonic()
    deadline = started + max_seconds
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        q = queries[i % len(queries)]
        i += 1
        t0 = time.perf_counter()
        try:
            cur.execute(q.text, (q.param,))
            cur.fetchall()
        except psycopg2.Error as exc:
            errors[q.label] = errors.get(q.label, 0) + 1
            first_error = first_error or str(exc).strip().splitlines()[0]
        else:
            ms = (time.perf_counter() - t0) * 1000
            samples.setdefault(q.label, []).append(ms)
            if len(slowest) < SLOWEST or ms > slowest[-1][0]:
                slowest.append((ms, round(time.monotonic() - started, 3), q.label, q.param))
                slowest.sort(reverse=True)
                del slowest[SLOWEST:]
        time.sleep(PAUSE_SECONDS)
    conn.close()
    results.put({"samples": samples, "errors": errors, "first_error": first_error,
                 "slowest": slowest})


class Reader:
    """Start with `with Reader(dsn, queries) as reader:`; `reader.result` after the block."""

    def __init__(self, dsn: str, queries: list[Query], max_seconds: float = 3600):
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.stop, self.results = ctx.Event(), ctx.Event(), ctx.Queue()
        self.process = ctx.Process(target=_reader, daemon=True, args=(
            dsn, queries, self.ready, self.stop, self.results, max_seconds))
        self.result: dict | None = None

    def __enter__(self) -> "Reader":
        self.process.start()
        if not self.ready.wait(120):
            self.process.kill()
            raise RuntimeError("the reader did not start within 120s")
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        raw = self.results.get(timeout=120)
        self.process.join(30)
        self.seconds = time.monotonic() - self.started
        everything = [ms for values in raw["samples"].values() for ms in values]
        self.result = {
            "seconds": round(self.seconds, 3),
            "all": summarize(everything, sum(raw["errors"].values())),
            "by_query": {label: summarize(values, raw["errors"].get(label, 0))
                         for label, values in sorted(raw["samples"].items())},
            "first_error": raw["first_error"],
            "slowest": [{"ms": round(ms, 3), "at_s": at, "query": label, "id": param}
                        for ms, at, label, param in raw["slowest"]],
        }


def idle(dsn: str, queries: list[Query], seconds: float) -> dict:
    with Reader(dsn, queries) as reader:
        time.sleep(seconds)
    return reader.result
