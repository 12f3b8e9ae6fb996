"""Issue 8: `bioloupe-views graph`, the lineage from the source tables to the marts, derived
from the database's catalog (no hand-kept lists) and rendered as text, Mermaid and DOT."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg2

from bioloupe_views import contract
from bioloupe_views import mart_graph as graph
from bioloupe_views.commands import graph as lineage

ROOT = Path(__file__).resolve().parent.parent


def load(dsn):
    conn = psycopg2.connect(dsn)
    try:
        return lineage.load(conn)
    finally:
        conn.close()


def planned_relations(sql, mart):
    """An independent witness: the relations the planner scans for the mart's query.
    (The planner may prune a join, so this is a subset of what the view reads.)"""
    definition = sql("SELECT pg_get_viewdef(%s::regclass)", (f"public.{mart}",))[0][0]
    plan = sql("EXPLAIN (VERBOSE, FORMAT JSON) " + definition.rstrip().rstrip(";"))[0][0]
    found = set()

    def walk(node):
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_sources_are_the_contract_and_mart_edges_are_the_refresh_graph(dsn, sql):
    lin = load(dsn)
    # Every table the marts read is in the source contract, and every contract table is read.
    assert set(lin.source_names) == set(contract.tables())
    conn = psycopg2.connect(dsn)
    g = graph.load(conn)
    conn.close()
    assert lin.marts == g.order and lin.upstream == g.upstream
    assert lin.upstream["mv_competitive_landscape"] == {"mv_development_programs"}
    assert lin.upstream["mv_drug_trials"] == set()
    for mart in lin.marts:
        scanned = planned_relations(sql, mart)
        assert scanned <= lin.sources[mart] | lin.upstream[mart], mart
        assert scanned & lin.sources[mart], mart
    # A source read only through an upstream mart is not a direct source of the dependent.
    assert "indications" in lin.sources["mv_development_programs"]
    assert "indications" not in lin.sources["mv_drug_pipeline"]


def test_a_new_mart_through_a_plain_view_appears_without_code_change(dsn, sql):
    sql("CREATE VIEW public.v_trial_drugs AS SELECT t.drug_id, count(*) AS n"
        " FROM public.mv_drug_trials t JOIN public.targets tg ON tg.id = t.drug_id GROUP BY 1")
    sql("CREATE MATERIALIZED VIEW public.mv_trial_drug_counts AS SELECT * FROM public.v_trial_drugs")
    sql("INSERT INTO bioloupe_views.mart (name, version) VALUES ('mv_trial_drug_counts', 1)")
    lin = load(dsn)
    assert lin.sources["mv_trial_drug_counts"] == {"targets"}       # through the plain view
    assert lin.upstream["mv_trial_drug_counts"] == {"mv_drug_trials"}
    assert "v_trial_drugs" not in lin.source_names                 # views are followed, not drawn
    assert ("mv_drug_trials", "mv_trial_drug_counts") in lin.edges()


def _mermaid_edges(text):
    labels = dict(re.findall(r'^\s+(\w+)\[\(?"([^"]+)"\)?\]$', text, re.M))
    return {(labels[a], labels[b]) for a, b in re.findall(r"^\s+(\w+) --> (\w+)$", text, re.M)}


def _dot_edges(text):
    return {(a.split(":", 1)[1], b.split(":", 1)[1])
            for a, b in re.findall(r'^\s+"([^"]+)" -> "([^"]+)";$', text, re.M)}


def test_formats_carry_exactly_the_lineage(dsn, cli):
    lin = load(dsn)
    edges = set(lin.edges())
    assert len(edges) == len(lin.edges())

    mermaid = cli("graph", "--format", "mermaid", dsn=dsn)
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.startswith("flowchart LR\n")
    assert _mermaid_edges(mermaid.stdout) == edges

    dot = cli("graph", "--format", "dot", dsn=dsn)
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.startswith("digraph lineage {") and dot.stdout.rstrip().endswith("}")
    assert _dot_edges(dot.stdout) == edges
    if shutil.which("dot"):
        check = subprocess.run(["dot", "-Tsvg"], input=dot.stdout, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr

    text = cli("graph", dsn=dsn)
    assert text.returncode == 0, text.stderr
    for source in lin.source_names:
        line = next(l for l in text.stdout.splitlines() if l.split()[:1] == [source])
        assert line.split("->", 1)[1].strip() == ", ".join(lin.readers(source))
    for mart in lin.marts:
        line = next(l for l in text.stdout.splitlines() if l.split()[:1] == [mart])
        assert f"level {lin.levels[mart]}" in line
        assert f"{len(lin.sources[mart])} source tables" in line


def test_names_needing_quotes_are_rendered_safely():
    lin = lineage.Lineage(marts=['mv "odd"', "mv-odd"], levels={'mv "odd"': 0, "mv-odd": 1},
                          upstream={'mv "odd"': set(), "mv-odd": {'mv "odd"'}},
                          sources={'mv "odd"': {"other.t\\x"}, "mv-odd": set()})
    mermaid = lineage.to_mermaid(lin)
    ids = re.findall(r"^\s+(\w+)\[", mermaid, re.M)
    assert len(ids) == len(set(ids)) == 3
    assert "#quot;odd#quot;" in mermaid
    dot = lineage.to_dot(lin)
    assert '"mart:mv \\"odd\\""' in dot and '"source:other.t\\\\x"' in dot


def test_the_docs_picture_is_the_current_lineage(dsn, cli):
    """docs/lineage.md's Mermaid picture is generated by `graph --format mermaid`; it must not drift."""
    page = ROOT / "docs" / "lineage.md"
    match = re.search(r"<!-- lineage:begin -->\s*```mermaid\n(.*?)```\s*<!-- lineage:end -->",
                      page.read_text(), re.S)
    assert match, "docs/lineage.md must hold the lineage picture between lineage:begin/end markers"
    current = cli("graph", "--format", "mermaid", dsn=dsn).stdout
    assert match.group(1).strip() == current.strip(), \
        "regenerate it: bioloupe-views graph --format mermaid"
