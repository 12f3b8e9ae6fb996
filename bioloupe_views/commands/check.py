"""`bioloupe-views check`: the data checks (dbt's tests) against the marts as they are now."""

from __future__ import annotations

import sys
import time
import uuid

import click

from .. import checks, mart_graph, missing_marts, report, run_results, selection
from ..config import describe, mask_text, resolve_dsn
from ..db import connect
from ..definitions import in_project
from .common import (dsn_option, friendly_errors, human_output_for, json_option,
                     selection_options)


def installed(conn) -> list[selection.CheckNode]:
    """The checks installed in the database, in their run order: what `check` can select."""
    with conn.cursor() as cur:
        cur.execute(in_project("SELECT name, mart, test FROM {project}.mart_check"
                               " ORDER BY position"))
        return [selection.CheckNode(*row) for row in cur.fetchall()]


@click.command("check")
@dsn_option
@selection_options
@json_option("Where the check results go, as JSON, however the run ends")
@friendly_errors
def check_command(dsn, select, exclude, json_path):
    """Run the data checks (the dbt tests) against the marts as they are now.

    --select takes check names and test_type:generic|singular|unique|... besides what selects
    marts (a mart's checks): `-s mv_drug_trials,test_type:singular`."""
    started, invocation_id, target = time.monotonic(), str(uuid.uuid4()), "?"

    def write_results(status: str, message: str | None, found: list[dict]) -> None:
        meta = run_results.metadata("check", target, invocation_id)
        run_results.write(json_path, run_results.check_results(
            meta, status, message and mask_text(message, dsn), time.monotonic() - started,
            found))

    try:
        dsn = resolve_dsn(dsn)
        target = describe(dsn)
        results = _run(dsn, select, exclude, json_path)
    except BaseException as exc:   # every way it ends has its results
        write_results("error", f"error: {exc}" if str(exc) else "error: interrupted", [])
        raise
    # A check that could not run is never a pass, whatever its severity.
    blocking = [r for r in results if r["blocks"] or r["status"] == "error"]
    write_results("error" if blocking else "success", None, results)
    sys.exit(1 if blocking else 0)


def _run(dsn, select, exclude, json_path) -> list[dict]:
    conn = connect(dsn)
    try:
        graph = mart_graph.load(conn)
        missing_marts.require_present(conn)
        chosen = selection.select_checks(graph.order, graph.upstream, installed(conn), select,
                                         exclude, sources=lambda: mart_graph.sources(conn))
        names = {c.name for c in chosen}
        marts = [m for m in graph.order if any(c.mart == m for c in chosen)]
        # A mart's checks run together (they share one scan of it): keep the selected ones.
        results = [r for r in checks.run(conn, marts) if r["name"] in names]
    finally:
        conn.close()
    with human_output_for(json_path):
        report.print_check_results(results)
    return results
