"""`bioloupe-views check`: the data checks (dbt's tests) against the marts as they are now."""

from __future__ import annotations

import sys

import click

from .. import checks, mart_graph, missing_marts, report, selection
from ..config import describe, resolve_dsn
from ..db import connect
from .common import (dsn_option, friendly_errors, human_output_for, json_option,
                     selection_options, write_json)


@click.command("check")
@dsn_option
@selection_options
@json_option("Write the check results as JSON to this file")
@friendly_errors
def check_command(dsn, select, exclude, json_path):
    """Run the data checks (the dbt tests) against the marts as they are now."""
    dsn = resolve_dsn(dsn)
    conn = connect(dsn)
    try:
        graph = mart_graph.load(conn)
        missing_marts.require_present(conn)
        marts = selection.select(graph.order, graph.upstream, select, exclude)
        results = checks.run(conn, marts)
    finally:
        conn.close()
    with human_output_for(json_path):
        report.print_check_results(results)
    # A check that could not run is never a pass, whatever its severity.
    blocking = [r for r in results if r["blocks"] or r["status"] == "error"]
    if json_path:
        write_json(json_path, {"target": describe(dsn), "success": not blocking,
                               "results": results})
    sys.exit(1 if blocking else 0)
