"""`bioloupe-views ls`: what a selection resolves to, one name per line, like `dbt ls`.

The same selectors as every command that selects (selection.py), so a selection can be
previewed before `refresh-views`, `check` or `cron install` acts on it. Marts print in
refresh order; checks in the order they run; sources (the tables the selected marts read)
by name.
"""

from __future__ import annotations

import click

from .. import mart_graph, missing_marts, selection
from ..config import resolve_dsn
from ..db import connect
from .check import installed
from .common import dsn_option, friendly_errors, selection_options

RESOURCE_TYPES = ("mart", "check", "source")


def resolve(conn, resource_type: str, select: tuple[str, ...],
            exclude: tuple[str, ...]) -> list[str]:
    """The names the selection resolves to, for one resource type."""
    graph = mart_graph.load(conn)
    sources = mart_graph.sources(conn)
    if resource_type == "check":
        missing_marts.require_present(conn)
        chosen = selection.select_checks(graph.order, graph.upstream, installed(conn), select,
                                         exclude, sources=sources)
        return [c.name for c in chosen]
    marts = selection.select(graph.order, graph.upstream, select, exclude, sources=sources)
    if resource_type == "source":
        return sorted(set().union(*(sources.get(m, set()) for m in marts)))
    return marts


@click.command("ls")
@dsn_option
@selection_options
@click.option("--resource-type", type=click.Choice(RESOURCE_TYPES), default="mart",
              show_default=True,
              help="mart: the selected marts; check: the selected checks; source: the source "
                   "tables the selected marts read.")
@friendly_errors
def ls_command(dsn, select, exclude, resource_type):
    """List what a selection resolves to, one name per line (like dbt ls)."""
    conn = connect(resolve_dsn(dsn))
    try:
        names = resolve(conn, resource_type, select, exclude)
    finally:
        conn.close()
    for name in names:
        click.echo(name)
    if not names:
        click.echo(f"Nothing selected: no {resource_type} matches the selection.", err=True)
