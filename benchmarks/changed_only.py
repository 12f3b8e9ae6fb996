"""`refresh-views --changed-only` at scale, beside the full refresh: nothing changed, one
source table changed, a day of changes. Each run is timed (wall, client CPU, server CPU)
with the app's reads going, and after each the marts are compared with a fresh evaluation
of their own queries, row for row: skipping must never leave a mart behind its sources.

The sources are tracked first with `bioloupe-views track-sources --apply` (the benchmark
owns its throwaway sources), then one full refresh records what every mart has seen.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bioloupe_views import definitions

ONE_TABLE = "drug_ownerships"  # read by mv_drug_pipeline and mv_competitive_landscape
ONE_TABLE_CHANGE = """
UPDATE public.drug_ownerships SET is_current = NOT is_current
WHERE id IN (SELECT id FROM public.drug_ownerships ORDER BY id LIMIT 100)
"""


def _console(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def supported() -> bool:
    """Whether this checkout's refresh-views has --changed-only."""
    help_text = subprocess.run([_console("refresh-views"), "--help"], capture_output=True,
                               text=True).stdout
    return "--changed-only" in help_text


def track_sources(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([_console("bioloupe-views"), "track-sources", "--apply"], env=env,
                          capture_output=True, text=True)


def differences(conn) -> dict[str, dict[str, int]]:
    """Per mart: rows it has that its query does not give now, and the reverse."""
    found = {}
    with conn.cursor() as cur:
        for mart in definitions.marts():
            cur.execute("SELECT pg_get_viewdef(%s::regclass)", (f"public.{mart}",))
            query = cur.fetchone()[0].rstrip().rstrip(";")
            cur.execute(f"CREATE TEMP TABLE fresh AS {query}")
            cur.execute(f"SELECT (SELECT count(*) FROM (SELECT * FROM public.{mart} EXCEPT ALL"
                        f" SELECT * FROM fresh) a), (SELECT count(*) FROM (SELECT * FROM fresh"
                        f" EXCEPT ALL SELECT * FROM public.{mart}) b)")
            extra, missing = cur.fetchone()
            cur.execute("DROP TABLE fresh")
            found[mart] = {"extra": extra, "missing": missing}
    return found


def refreshed_marts(result: dict) -> dict[str, str]:
    return {mart: r["status"] for mart, r in (result.get("marts") or {}).items()}


def measure(conn, before: dict[str, callable], refresh, with_reads) -> dict:
    """Run `refresh(label)` -> result dict after each change in `before` (label -> change),
    with reads; returns per scenario the run, its reads and the differences afterwards."""
    scenarios = {}
    for label, change in before.items():
        change()
        outcome, reads = with_reads(lambda lb=label: refresh(lb))
        scenarios[label] = {"run": outcome, "reads": reads, "statuses": refreshed_marts(outcome),
                            "differences": differences(conn)}
    return scenarios
