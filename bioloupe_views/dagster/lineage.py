"""What each mart reads and which checks it has, from the files alone (no database).

Dagster loads definitions in processes that may have no route to the database (`dagster
definitions validate`, a code server starting while PostgreSQL is down), so the asset graph
is read from the latest version of each mart on disk: the marts and source tables its
query.sql names, and its checks as checks.compile_all() compiles them. The migrations build
the database from the same files, and tests/test_dagster.py proves that this equals what
the catalog says after `alembic upgrade head` (pg_depend, bioloupe_views.mart_check).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache

from .. import checks, contract, definitions

# Comments and string literals name no relation: drop them before looking for names.
_NOT_CODE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.S)
_WORD = re.compile(r'"?\b([A-Za-z_][A-Za-z0-9_]*)\b"?')


@dataclass(frozen=True)
class MartFiles:
    name: str
    version: int
    upstream_marts: frozenset[str]
    source_tables: frozenset[str]
    checks: tuple[checks.Check, ...]
    code_version: str


def _names(query: str) -> set[str]:
    return {m.group(1).lower() for m in _WORD.finditer(_NOT_CODE.sub(" ", query))}


def _code_version(version: definitions.MartVersion) -> str:
    """Changes whenever a migration would build something else: the version number and the
    hash of everything the version's directory holds (query, mart.toml, singular checks)."""
    digest = hashlib.sha256()
    for path in [version.directory / "query.sql", version.directory / "mart.toml",
                 *version.singular_check_files]:
        if path.exists():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{version.mart}-v{version.number}-{digest.hexdigest()[:12]}"


@cache
def marts() -> dict[str, MartFiles]:
    """Every mart, by name, as its latest version on disk describes it."""
    all_marts = definitions.marts()
    sources = set(contract.tables())
    compiled = checks.compile_all()
    result = {}
    for name, mart in all_marts.items():
        version = mart.latest
        names = _names(version.query)
        result[name] = MartFiles(
            name, version.number,
            frozenset(names & (set(all_marts) - {name})),
            frozenset(names & sources),
            tuple(c for c in compiled if c.mart == name),
            _code_version(version))
    return result
