"""The mart graph as the database knows it (bioloupe_views.refresh_order and
bioloupe_views.mart_dependency, both derived from pg_depend). Nothing here is hand-kept:
a mart added by a later migration is ordered correctly without a code change."""

from __future__ import annotations

from dataclasses import dataclass

from .db import require_migrated
from .definitions import MART_SCHEMA, SQL_DIR, in_project

SOURCES_QUERY = SQL_DIR / "_queries" / "mart_sources.sql"


@dataclass(frozen=True)
class MartGraph:
    order: list[str]                 # refresh order: (level, name)
    levels: dict[str, int]
    upstream: dict[str, set[str]]    # mart -> marts it reads

    def upstream_within(self, mart: str, selected: set[str]) -> set[str]:
        return self.upstream.get(mart, set()) & selected


def load(conn) -> MartGraph:
    require_migrated(conn)
    with conn.cursor() as cur:
        cur.execute(in_project("SELECT mart, level FROM {project}.refresh_order ORDER BY level, mart"))
        rows = cur.fetchall()
        cur.execute(in_project("SELECT mart, depends_on FROM {project}.mart_dependency"))
        edges = cur.fetchall()
    upstream: dict[str, set[str]] = {mart: set() for mart, _ in rows}
    for mart, dep in edges:
        upstream[mart].add(dep)
    return MartGraph([m for m, _ in rows], dict(rows), upstream)


def sources(conn) -> dict[str, set[str]]:
    """mart -> the source relations it reads (sql/_queries/mart_sources.sql), each labelled
    by its name, or schema.name outside the marts' schema: what source: selectors and the
    lineage graph name."""
    result: dict[str, set[str]] = {}
    with conn.cursor() as cur:
        cur.execute(SOURCES_QUERY.read_text())
        for mart, schema, relation in cur.fetchall():
            label = relation if schema == MART_SCHEMA else f"{schema}.{relation}"
            result.setdefault(mart, set()).add(label)
    return result
