"""`bioloupe-views graph`: the lineage from the source tables to the marts, as text, Mermaid
or Graphviz DOT (what dbt's docs lineage graph showed).

Nothing here is hand-kept. Both kinds of edge come from the database's own catalog, i.e.
the dependencies PostgreSQL records for each view's rewrite rule:
- source table -> mart: mart_graph.sources() (sql/_queries/mart_sources.sql, over
  bioloupe_views.mart_reads);
- mart -> mart: graph.load() (bioloupe_views.mart_dependency), the same edges the refresh
  order uses.
Plain views in between are followed, not drawn. The command therefore needs a database
(any migrated one, e.g. `bioloupe-views demo --keep`): parsing table names out of the SQL
files offline would be a second, fragile copy of what PostgreSQL already knows exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import click

from .. import mart_graph, selection
from .common import dsn_option, friendly_errors, selection_options
from ..config import resolve_dsn
from ..db import connect

@dataclass(frozen=True)
class Lineage:
    marts: list[str]                 # refresh order
    levels: dict[str, int]
    upstream: dict[str, set[str]]    # mart -> marts it reads
    sources: dict[str, set[str]]     # mart -> source relations it reads

    @property
    def source_names(self) -> list[str]:
        return sorted(set().union(*self.sources.values())) if self.sources else []

    def readers(self, source: str) -> list[str]:
        return [m for m in self.marts if source in self.sources[m]]

    def edges(self) -> list[tuple[str, str]]:
        """(from, to) pairs: every source -> mart edge, then every mart -> mart edge."""
        result = [(s, m) for m in self.marts for s in sorted(self.sources[m])]
        result += [(u, m) for m in self.marts for u in sorted(self.upstream[m])]
        return result


def load(conn) -> Lineage:
    graph = mart_graph.load(conn)
    edges = mart_graph.sources(conn)
    return Lineage(graph.order, graph.levels, graph.upstream,
                   {m: edges.get(m, set()) for m in graph.order})


def selected(lineage: Lineage, marts: list[str]) -> Lineage:
    """The lineage of the selected marts only: their sources and the edges between them."""
    keep = set(marts)
    return Lineage(marts, {m: lineage.levels[m] for m in marts},
                   {m: lineage.upstream[m] & keep for m in marts},
                   {m: lineage.sources[m] for m in marts})


# --- renderers -------------------------------------------------------------------------

def to_text(lineage: Lineage) -> str:
    names = lineage.source_names
    width = max([len(n) for n in names + lineage.marts] + [10])
    lines = [f"Source tables ({len(names)}) -> the marts that read them"]
    for source in names:
        lines.append(f"  {source:<{width}}  -> {', '.join(lineage.readers(source))}")
    lines += ["", f"Marts ({len(lineage.marts)}), in refresh order"]
    for mart in lineage.marts:
        reads = sorted(lineage.upstream[mart]) + [f"{len(lineage.sources[mart])} source tables"]
        lines.append(f"  {mart:<{width}}  level {lineage.levels[mart]}  <- {' + '.join(reads)}")
    return "\n".join(lines)


def _node_ids(names: list[str], prefix: str) -> dict[str, str]:
    """Mermaid ids: the name made safe, made unique if two names collapse to one id."""
    ids: dict[str, str] = {}
    for name in names:
        base = prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)
        candidate, n = base, 2
        while candidate in ids.values():
            candidate, n = f"{base}_{n}", n + 1
        ids[name] = candidate
    return ids


def _mermaid_label(name: str) -> str:
    return '"' + name.replace('"', "#quot;") + '"'


def to_mermaid(lineage: Lineage) -> str:
    src = _node_ids(lineage.source_names, "src_")
    mart = _node_ids(lineage.marts, "mart_")
    ids = {**src, **mart}
    lines = ["flowchart LR", "    subgraph sources [source tables]"]
    lines += [f"        {src[s]}[({_mermaid_label(s)})]" for s in lineage.source_names]
    lines += ["    end", "    subgraph marts [marts]"]
    lines += [f"        {mart[m]}[{_mermaid_label(m)}]" for m in lineage.marts]
    lines += ["    end"]
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in lineage.edges()]
    return "\n".join(lines)


def _dot_id(kind: str, name: str) -> str:
    return '"' + f"{kind}:{name}".replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_label(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(lineage: Lineage) -> str:
    kind = {s: "source" for s in lineage.source_names} | {m: "mart" for m in lineage.marts}
    lines = ["digraph lineage {", "    rankdir=LR;", '    node [fontname="Helvetica"];',
             "    subgraph cluster_sources {", '        label="source tables";',
             "        node [shape=cylinder];"]
    lines += [f"        {_dot_id('source', s)} [label={_dot_label(s)}];" for s in lineage.source_names]
    lines += ["    }", "    subgraph cluster_marts {", '        label="marts";',
              '        node [shape=box, style=filled, fillcolor="#dbeafe"];']
    lines += [f"        {_dot_id('mart', m)} [label={_dot_label(m)}];" for m in lineage.marts]
    lines += ["    }"]
    lines += [f"    {_dot_id(kind[a], a)} -> {_dot_id(kind[b], b)};" for a, b in lineage.edges()]
    lines += ["}"]
    return "\n".join(lines)


RENDERERS = {"text": to_text, "mermaid": to_mermaid, "dot": to_dot}


@click.command("graph")
@dsn_option
@selection_options
@click.option("--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text",
              show_default=True, help="text, Mermaid (for Markdown) or Graphviz DOT.")
@friendly_errors
def graph_command(dsn, select, exclude, fmt):
    """Show the lineage from the source tables to the marts, as the database records it."""
    conn = connect(resolve_dsn(dsn))
    try:
        lineage = load(conn)
    finally:
        conn.close()
    marts = selection.select(lineage.marts, lineage.upstream, select, exclude,
                             sources=lineage.sources)
    click.echo(RENDERERS[fmt](selected(lineage, marts)))
