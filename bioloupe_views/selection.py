"""dbt's node selection grammar, on the mart graph (and, for `check`, on the checks).

    --select 'a b' / -s a -s b    union
    a,b                           intersection
    +x  x+  +x+  2+x  x+1         ancestors / descendants (optionally only n levels)
    @x                            x, its descendants, and every ancestor of those
    mv_drug_*  *                  fnmatch globs on names
    tag:NAME                      the marts whose version declares the tag (mart.toml `tags`)
    source:NAME  source:NAME+     the marts that read the source table (and their descendants)
    test_type:generic|singular    checks only; also test_type:unique, not_null, ...
    --exclude                     the same grammar, taken away from the selection

Everything here is a pure function of the graph it is given: the marts and their edges come
from the database (mart_graph.load), the source edges from its catalog lineage
(commands.graph.load), the tags from the mart versions on disk. A name that matches nothing
is a usage error naming the closest valid names, the one form of that message in every
command (see unknown()).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .errors import UserError

GENERIC_TESTS = ("not_null", "unique", "accepted_values", "relationships")
_GLOB = re.compile(r"[*?\[]")
# [@][n]+ body [+[n]]: the body holds no '+' or '@'; depth digits only next to a '+'.
_TERM = re.compile(r"^(?P<at>@)?(?:(?P<up>\d*)\+)?(?P<body>[^+@]+)(?:\+(?P<down>\d*))?$")
_METHODS = ("tag", "source", "test_type")

Sources = Mapping[str, set[str]]


def unknown(kind: str, name: str, valid: Iterable[str], where: str = "",
            also: Iterable[str] = (), also_note: str = "", also_kind: str = "") -> UserError:
    """The one message for a name that matches nothing: what it is, where it was given, the
    closest valid names (difflib, over `valid` and `also`) and all of `valid` (`also`, say
    the many check names, is only pointed to by `also_note`; when the closest name is one of
    them, the name is called an unknown `also_kind`)."""
    valid, also = list(valid), list(also)
    place = f" in {where}" if where else ""
    close = difflib.get_close_matches(name, valid + also, n=3, cutoff=0.75)
    if close and close[0] in also and also_kind:
        kind = also_kind
    hint = f": did you mean {' or '.join(close)}?" if close else ""
    listed = ", ".join(valid) if valid else "(none)"
    plural = "valid tags are" if kind == "tag" else "valid names are"
    note = f"; {also_note}" if also_note else ""
    return UserError(f"unknown {kind} {name!r}{place}{hint} ({plural} {listed}{note})")


@dataclass(frozen=True)
class CheckNode:
    """An installed check: its name, its mart and its test (a generic test or 'singular')."""
    name: str
    mart: str
    test: str


@dataclass(frozen=True)
class _Term:
    text: str
    method: str | None
    value: str
    up: int | None          # None: no ancestors; -1: all of them; n: n levels
    down: int | None
    at: bool


def _depth(digits: str | None) -> int | None:
    if digits is None:
        return None
    return int(digits) if digits else -1


def parse(text: str, where: str = "--select") -> _Term:
    """One selector term (no spaces, no commas), or a UserError saying what is wrong."""
    match = _TERM.match(text)
    if not match:
        raise UserError(f"invalid selector {text!r} in {where}: use name, +name, name+, 2+name, "
                        "name+1, @name, a glob such as mv_*, tag:NAME or source:NAME")
    if match["at"] and (match["up"] is not None or match["down"] is not None):
        raise UserError(f"invalid selector {text!r} in {where}: @ cannot be combined with +")
    method, sep, value = match["body"].partition(":")
    if not sep:
        method, value = None, match["body"]
    elif method not in _METHODS:
        raise UserError(f"invalid selector {text!r} in {where}: unknown method {method!r}; "
                        f"use one of {', '.join(m + ':' for m in _METHODS)}")
    if not value:
        raise UserError(f"invalid selector {text!r} in {where}: {method}: needs a name")
    return _Term(text, method, value, _depth(match["up"]), _depth(match["down"]),
                 bool(match["at"]))


def _walk(start: set[str], edges: Mapping[str, set[str]], depth: int) -> set[str]:
    """Everything reachable from `start` along `edges` within `depth` steps (-1: no limit)."""
    seen, frontier, level = set(), set(start), 0
    while frontier and (depth < 0 or level < depth):
        frontier = {n for f in frontier for n in edges.get(f, ())} - seen
        seen |= frontier
        level += 1
    return seen


def _default_tags(marts: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each mart's tags, from its latest version on disk (marts not on disk have none)."""
    from . import definitions  # definitions names its unknown marts with unknown() above

    known = definitions.marts()
    return {m: known[m].latest.tags if m in known else () for m in marts}


@dataclass
class Universe:
    """What selectors choose from: the marts in refresh order, their edges, and, when the
    command has them, the source edges (mart -> source labels, or a function that loads
    them), the tags and the installed checks."""

    order: list[str]
    upstream: Mapping[str, set[str]]
    sources: Sources | Callable[[], Sources] | None = None
    tags: Mapping[str, Iterable[str]] | None = None
    checks: list[CheckNode] | None = None
    downstream: dict[str, set[str]] = field(init=False)

    def __post_init__(self):
        self.downstream = {m: set() for m in self.order}
        for mart, ups in self.upstream.items():
            for up in ups:
                self.downstream.setdefault(up, set()).add(mart)

    # -- the lazily known parts ---------------------------------------------------------

    def source_edges(self, term: _Term, where: str) -> Sources:
        if callable(self.sources):
            self.sources = self.sources()
        if self.sources is None:
            raise UserError(f"{term.text!r} in {where}: source: selectors are not available "
                            "in this command")
        return self.sources

    def tag_map(self) -> Mapping[str, Iterable[str]]:
        if self.tags is None:
            self.tags = _default_tags(self.order)
        return self.tags

    # -- one term -----------------------------------------------------------------------

    def _match(self, kind: str, pattern: str, valid: list[str], where: str,
               also: list[str] = (), also_note: str = "") -> set[str]:
        """The names in `valid` or `also` that `pattern` (a name or a glob) matches."""
        if _GLOB.search(pattern):
            found = set(fnmatch.filter([*valid, *also], pattern))
            if not found:
                note = f"; {also_note}" if also_note else ""
                raise UserError(f"no {kind} matches {pattern!r} in {where} "
                                f"(valid names are {', '.join(valid) or '(none)'}{note})")
            return found
        if pattern not in valid and pattern not in also:
            raise unknown(kind, pattern, valid, where, also, also_note,
                          "check" if also else "")
        return {pattern}

    def _readers(self, term: _Term, where: str) -> set[str]:
        edges = self.source_edges(term, where)
        labels = sorted(set().union(*edges.values())) if edges else []
        # A source is named by its label (schema.table outside the marts' schema) or by its
        # table name alone.
        names = sorted(set(labels) | {label.rsplit(".", 1)[-1] for label in labels})
        wanted = self._match("source", term.value, names, where)
        return {m for m in self.order
                if any(s in wanted or s.rsplit(".", 1)[-1] in wanted for s in edges.get(m, ()))}

    def _graph(self, base: set[str], term: _Term, from_source: bool = False) -> set[str]:
        chosen = set(base)
        if term.at:
            below = chosen | _walk(chosen, self.downstream, -1)
            return below | _walk(below, self.upstream, -1)
        if term.down is not None:
            # A source's readers are its first level of descendants already.
            depth = term.down - 1 if from_source and term.down > 0 else term.down
            chosen |= _walk(base, self.downstream, depth)
        if term.up is not None and not from_source:
            chosen |= _walk(base, self.upstream, term.up)
        return chosen

    def marts_of(self, term: _Term, where: str, with_checks: bool = False) -> set[str]:
        """The marts one term selects."""
        if term.method == "tag":
            tags = self.tag_map()
            all_tags = sorted({t for m in self.order for t in tags.get(m, ())})
            wanted = self._match("tag", term.value, all_tags, where)
            base = {m for m in self.order if wanted & set(tags.get(m, ()))}
        elif term.method == "source":
            return self._graph(self._readers(term, where), term, from_source=True)
        elif term.method == "test_type":
            raise UserError(f"{term.text!r} in {where}: test_type: selects checks; use it "
                            "with `bioloupe-views check` or `ls --resource-type check`")
        else:
            also = [c.name for c in self.checks or ()] if with_checks else []
            note = "check names: `bioloupe-views ls --resource-type check`" if with_checks else ""
            base = self._match("mart", term.value, self.order, where, also, note) & set(self.order)
        return self._graph(base, term)

    def checks_of(self, term: _Term, where: str) -> set[str]:
        """The checks one term selects: by name or test_type, or those of the marts it selects."""
        checks = self.checks or []
        if term.method == "test_type":
            types = ("generic", "singular", *GENERIC_TESTS)
            if term.value not in types:
                raise unknown("test_type", term.value, types, where)
            if term.value == "generic":
                return {c.name for c in checks if c.test != "singular"}
            return {c.name for c in checks if c.test == term.value}
        names = [c.name for c in checks]
        by_name: set[str] = set()
        if term.method is None:
            if _GLOB.search(term.value):
                by_name = set(fnmatch.filter(names, term.value))
                if by_name and not fnmatch.filter(self.order, term.value):
                    return by_name
            elif term.value in names:
                return {term.value}
        marts = self.marts_of(term, where, with_checks=True)
        return by_name | {c.name for c in checks if c.mart in marts}

    # -- whole options ------------------------------------------------------------------

    def resolve(self, selectors: tuple[str, ...], where: str, of_checks: bool = False) -> set[str]:
        """The union over space-separated (or repeated) values of the intersection over
        each value's comma-separated terms."""
        result: set[str] = set()
        for group in (g for s in selectors for g in s.split()):
            terms = [parse(t, where) for t in group.split(",")]
            sets = [self.checks_of(t, where) if of_checks else self.marts_of(t, where)
                    for t in terms]
            result |= set.intersection(*sets)
        return result


def _given(selectors: tuple[str, ...]) -> bool:
    return any(s.strip() for s in selectors)


def select(order: list[str], upstream: Mapping[str, set[str]], include: tuple[str, ...] = (),
           exclude: tuple[str, ...] = (), *,
           sources: Sources | Callable[[], Sources] | None = None,
           tags: Mapping[str, Iterable[str]] | None = None) -> list[str]:
    """The selected marts, in refresh order. `upstream[m]` is the set of marts m reads;
    `sources[m]` the source tables it reads (needed only by source: selectors; a function
    is called only then); `tags` defaults to the tags of each mart's version on disk."""
    universe = Universe(order, upstream, sources, tags)
    chosen = universe.resolve(include, "--select") if _given(include) else set(order)
    if _given(exclude):
        chosen -= universe.resolve(exclude, "--exclude")
    return [m for m in order if m in chosen]


def select_checks(order: list[str], upstream: Mapping[str, set[str]], checks: list[CheckNode],
                  include: tuple[str, ...] = (), exclude: tuple[str, ...] = (), *,
                  sources: Sources | Callable[[], Sources] | None = None,
                  tags: Mapping[str, Iterable[str]] | None = None) -> list[CheckNode]:
    """The selected checks, in their marts' refresh order and then their own order: check
    names and test_type: as well as everything that selects marts (a mart's checks)."""
    universe = Universe(order, upstream, sources, tags, checks)
    names = {c.name for c in checks}
    chosen = universe.resolve(include, "--select", of_checks=True) if _given(include) else names
    if _given(exclude):
        chosen -= universe.resolve(exclude, "--exclude", of_checks=True)
    rank = {m: i for i, m in enumerate(order)}
    return sorted((c for c in checks if c.name in chosen),
                  key=lambda c: rank.get(c.mart, len(rank)))
