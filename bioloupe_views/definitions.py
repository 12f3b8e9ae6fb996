"""The marts this project defines, read from bioloupe_views/sql/<mart>/.

Each mart is a directory holding its versioned SQL (v1.sql, v2.sql, ...), a mart.toml with
its unique key, its other indexes and its generic checks, and checks/*.sql for its singular
checks. The directory listing is the list of marts: nothing else in the code names them.
The refresh order is not kept here; it is read from the database (see refresh.py).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import UserError

SQL_DIR = Path(__file__).parent / "sql"
MART_SCHEMA = "public"
PROJECT_SCHEMA = "bioloupe_views"
_VERSION_FILE = re.compile(r"^v(\d+)\.sql$")


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool


@dataclass(frozen=True)
class SourceIndex:
    """An index on a source table that the mart's query plan uses (mart.toml
    `source_indexes`). The sources belong to their owners: `bioloupe-views doctor` only
    reports the missing ones, as statements to run."""
    table: str
    columns: tuple[str, ...]
    why: str = ""


@dataclass(frozen=True)
class Mart:
    name: str
    description: str
    unique_key: tuple[str, ...]
    other_indexes: tuple[tuple[str, ...], ...]
    check_declarations: tuple[dict, ...]
    directory: Path
    source_indexes: tuple[SourceIndex, ...] = ()

    @property
    def versions(self) -> list[int]:
        found = (_VERSION_FILE.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    @property
    def latest_version(self) -> int:
        return self.versions[-1]

    def sql_path(self, version: int) -> Path:
        return self.directory / f"v{version}.sql"

    def sql(self, version: int) -> str:
        path = self.sql_path(version)
        if not path.exists():
            raise UserError(f"{self.name} has no version {version}: expected {path}")
        return path.read_text()

    @property
    def indexes(self) -> list[Index]:
        """The unique index REFRESH ... CONCURRENTLY needs, then the others from mart.toml."""
        result = [Index(f"{self.name}_key", self.unique_key, True)]
        for columns in self.other_indexes:
            result.append(Index(f"{self.name}__{'_'.join(columns)}", tuple(columns), False))
        for index in result:
            if len(index.name) > 63:
                raise UserError(f"index name {index.name} is longer than PostgreSQL's 63 bytes")
        return result

    @property
    def singular_check_files(self) -> list[Path]:
        return sorted((self.directory / "checks").glob("*.sql"))


def _load(directory: Path) -> Mart:
    spec = tomllib.loads((directory / "mart.toml").read_text())
    return Mart(
        name=directory.name,
        description=spec.get("description", ""),
        unique_key=tuple(spec["unique_key"]),
        other_indexes=tuple(tuple(cols) for cols in spec.get("indexes", [])),
        check_declarations=tuple(spec.get("checks", [])),
        directory=directory,
        source_indexes=tuple(SourceIndex(i["table"], tuple(i["columns"]), i.get("why", ""))
                             for i in spec.get("source_indexes", [])),
    )


@cache
def marts() -> dict[str, Mart]:
    """All marts, by name, in name order."""
    dirs = sorted(p for p in SQL_DIR.iterdir() if (p / "mart.toml").exists())
    return {d.name: _load(d) for d in dirs}


def get(name: str) -> Mart:
    """The mart called `name`, or a UserError that lists the valid names."""
    known = marts()
    if name not in known:
        raise UserError(f"unknown view {name!r}: valid names are {', '.join(known)}")
    return known[name]


def project_sql(name: str) -> str:
    """A SQL file of the project's own schema (bioloupe_views/sql/_project/NAME.sql)."""
    return (SQL_DIR / "_project" / f"{name}.sql").read_text()
