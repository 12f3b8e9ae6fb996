"""The dbt baseline: the seed's dbt project (benchmarks/dbt/), built with `dbt build` on the
same database, in the same run, into its own schema (dbt_bench, from its profile).

dbt is optional (the `bench` extra); without it the baseline is skipped with a message.
After a build, dbt's tables are compared with our marts row for row (EXCEPT ALL both ways):
the seed's SQL and ours must agree at every scale, not only on the test data.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from psycopg2 import sql

from bioloupe_views import definitions

from . import processes

PROJECT = Path(__file__).parent / "dbt"
SCHEMA = "dbt_bench"

# The seed's SQL computes owners and targets with per-drug LATERAL subqueries, which scan
# the whole table once per drug without these. Our marts do not need them; the benchmark
# creates them anyway so the baseline is dbt at its best, not a strawman.
SEED_SQL_INDEXES = [("drug_ownerships", ("drug_id",)), ("drug_target_actions", ("drug_id",))]


def executable() -> Path | None:
    candidate = Path(sys.executable).parent / "dbt"
    if candidate.exists():
        return candidate
    found = shutil.which("dbt")
    return Path(found) if found else None


def build(dbt: Path, env: dict, work: Path, label: str, timeout: float,
          postmaster: int | None = None) -> processes.Finished:
    command = [str(dbt), "build", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
               "--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    return processes.run(command, env, PROJECT, work / f"{label}.log", timeout, postmaster)


def compare(conn) -> dict[str, dict]:
    """Rows in our mart but not in dbt's table, and the reverse (as multisets)."""
    result = {}
    with conn.cursor() as cur:
        for mart in definitions.marts():
            ours, theirs = sql.Identifier(definitions.MART_SCHEMA, mart), sql.Identifier(SCHEMA, mart)
            cur.execute(sql.SQL(
                "SELECT (SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) x),"
                " (SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) y)"
            ).format(a=ours, b=theirs))
            only_ours, only_dbt = cur.fetchone()
            result[mart] = {"only_in_ours": only_ours, "only_in_dbt": only_dbt,
                            "identical": only_ours == 0 and only_dbt == 0}
    return result
