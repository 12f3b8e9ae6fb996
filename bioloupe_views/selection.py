"""dbt's node selection on the mart graph: `name`, `name+`, `+name`, `+name+`.

The graph (which marts exist and which reads which) comes from the database; see
graph.load(). Unknown names are a usage error that lists the valid ones.
"""

from __future__ import annotations

from .errors import UserError


def _closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _expand(term: str, upstream: dict[str, set[str]], downstream: dict[str, set[str]],
            valid: list[str]) -> set[str]:
    name = term.strip("+")
    if name not in valid:
        raise UserError(f"unknown view {name!r} in selector {term!r}: valid names are {', '.join(valid)}")
    chosen = {name}
    if term.startswith("+"):
        chosen |= _closure(name, upstream)
    if term.endswith("+"):
        chosen |= _closure(name, downstream)
    return chosen


def select(order: list[str], upstream: dict[str, set[str]], include: tuple[str, ...] = (),
           exclude: tuple[str, ...] = ()) -> list[str]:
    """The selected marts, in refresh order. `upstream[m]` is the set of marts m reads.
    Each of include/exclude holds selectors, possibly several per string (space-separated)."""
    downstream: dict[str, set[str]] = {m: set() for m in order}
    for mart, ups in upstream.items():
        for up in ups:
            downstream.setdefault(up, set()).add(mart)

    def resolve(selectors: tuple[str, ...]) -> set[str]:
        result: set[str] = set()
        for term in (t for s in selectors for t in s.replace(",", " ").split()):
            result |= _expand(term, upstream, downstream, order)
        return result

    chosen = resolve(include) if any(s.strip() for s in include) else set(order)
    chosen -= resolve(exclude)
    return [m for m in order if m in chosen]
