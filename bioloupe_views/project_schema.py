"""The project's own schema (bioloupe_views), versioned like the marts.

    sql/project/v1/tables.sql          the tables as first released
    sql/project/v1/routines/*.sql      one view, function or procedure per file
    sql/project/vN/upgrade.sql         the table changes from N-1 to N (N >= 2) ...
    sql/project/vN/downgrade.sql       ... and back
    sql/project/vN/routines/*.sql      the routines that are new or changed in N
    sql/project/vN/removed.txt         routines that N no longer has, one name a line
    sql/project/vN/privileges.sql      who may run N's routines (the latest one <= N applies)
    sql/project/v1/drop.sql            the tables, for `alembic downgrade base`

A routine file is named NNN_<name>.sql; NNN orders creation (a view before the views and
SQL functions that read it) and stays the same across versions. The routines of version N
are, for each name, the file of the highest version <= N that has one, less the removed
ones. Routines hold no data, so a version change drops the old set, changes the tables and
creates the new set: changing one function later is one new file and a migration with
`op.change_project_schema(from_version=N, to_version=N+1)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import sql

from . import definitions
from .errors import UserError

PROJECT_DIR = definitions.SQL_DIR / "project"
_ROUTINE_FILE = re.compile(r"^(\d+)_(\w+)\.sql$")
_ROUTINE_KIND = re.compile(r"^CREATE\s+(?:OR\s+REPLACE\s+)?(VIEW|FUNCTION|PROCEDURE)\b",
                           re.I | re.M)


@dataclass(frozen=True)
class Routine:
    name: str
    order: int
    path: Path

    @property
    def kind(self) -> str:
        match = _ROUTINE_KIND.search(self.path.read_text())
        if not match:
            raise UserError(f"{self.path}: expected CREATE VIEW, FUNCTION or PROCEDURE")
        return match.group(1).upper()

    def drop_statement(self) -> sql.Composed:
        keyword = "VIEW" if self.kind == "VIEW" else "ROUTINE"
        return sql.SQL("DROP {} IF EXISTS {}").format(
            sql.SQL(keyword), sql.Identifier(definitions.PROJECT_SCHEMA, self.name))


def _version_dir(version: int) -> Path:
    path = PROJECT_DIR / f"v{version}"
    if not path.is_dir():
        raise UserError(f"the project schema has no version {version}: expected {path}")
    return path


def routines(version: int) -> list[Routine]:
    """The routines of project schema `version`, in creation order."""
    found: dict[str, Routine] = {}
    for number in range(1, version + 1):
        directory = _version_dir(number)
        removed = directory / "removed.txt"
        if removed.exists():
            for name in removed.read_text().split():
                found.pop(name, None)
        for path in sorted((directory / "routines").glob("*.sql")):
            match = _ROUTINE_FILE.match(path.name)
            if not match:
                raise UserError(f"{path}: routine files are named NNN_<name>.sql")
            found[match.group(2)] = Routine(match.group(2), int(match.group(1)), path)
    return sorted(found.values(), key=lambda r: (r.order, r.name))


def _privileges(version: int) -> list[str]:
    for number in range(version, 0, -1):
        path = _version_dir(number) / "privileges.sql"
        if path.exists():
            return [path.read_text()]
    return []


def create_statements(version: int) -> list[str]:
    """Everything that creates project schema `version` from nothing (first migration)."""
    if version != 1:
        raise UserError("the project schema is created at version 1, then changed step by step")
    return [(_version_dir(1) / "tables.sql").read_text(),
            *(r.path.read_text() for r in routines(1))]


def change_statements(from_version: int, to_version: int) -> list[sql.Composable | str]:
    """Everything that takes the project schema one version up or down."""
    if abs(to_version - from_version) != 1:
        raise UserError(f"change the project schema one version at a time, not "
                        f"{from_version} -> {to_version}")
    step = (_version_dir(to_version) / "upgrade.sql" if to_version > from_version
            else _version_dir(from_version) / "downgrade.sql")
    drops = [r.drop_statement() for r in reversed(routines(from_version))]
    tables = [step.read_text()] if _has_statements(step.read_text()) else []
    return [*drops, *tables, *(r.path.read_text() for r in routines(to_version)),
            *_privileges(to_version)]


def _has_statements(text: str) -> bool:
    """False for a step that is only comments (a version that changes routines alone)."""
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def drop_statements() -> list[sql.Composable | str]:
    """Everything that removes project schema v1 (the first migration's downgrade), object
    by object and never with CASCADE."""
    return [*(r.drop_statement() for r in reversed(routines(1))),
            (_version_dir(1) / "drop.sql").read_text()]
