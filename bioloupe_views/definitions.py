"""The marts this project defines: the SQL files on disk, one directory per released version.

    sql/<mart>/v<N>/query.sql      the SELECT
    sql/<mart>/v<N>/mart.toml      description, tags, unique key, other indexes, generic checks,
                                   the source indexes its plan uses
    sql/<mart>/v<N>/checks/*.sql   singular checks

A version is whole and, once a migration on main uses it, immutable: creating or replacing a
mart at version N builds exactly N's query, N's indexes and N's checks, so a downgrade that
goes back to N-1 restores all three. The directory listing is the list of marts: nothing
else in the code names them. The refresh order is not kept here; the database derives it
from its own catalog (bioloupe_views.refresh_order).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tomllib
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from psycopg2 import sql

from .errors import UserError

SQL_DIR = Path(__file__).parent / "sql"
MART_SCHEMA = "public"
PROJECT_SCHEMA = "bioloupe_views"
CHECKS_SCHEMA = "bioloupe_views_checks"
_VERSION_DIR = re.compile(r"^v(\d+)$")


def check_relation(check_name: str) -> str:
    """The name of a check's view in CHECKS_SCHEMA: the check's own name, or, past
    PostgreSQL's 63 bytes, its first 54 characters and a hash of the whole."""
    if len(check_name.encode()) <= 63:
        return check_name
    return f"{check_name[:54]}_{hashlib.md5(check_name.encode()).hexdigest()[:8]}"


def in_project(statement: str) -> sql.Composed:
    """A statement on the project's own objects: `{project}` and `{checks}` stand for their
    schemas (quoted identifiers), `{project_text}` for the project schema's name inside a
    string literal such as to_regclass('{project_text}.mart')."""
    return sql.SQL(statement).format(project=sql.Identifier(PROJECT_SCHEMA),
                                     checks=sql.Identifier(CHECKS_SCHEMA),
                                     project_text=sql.SQL(PROJECT_SCHEMA))


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
class MartVersion:
    """One released version of a mart: its query, unique key, indexes and checks."""

    mart: str
    number: int
    directory: Path

    @cached_property
    def _spec(self) -> dict:
        path = self.directory / "mart.toml"
        try:
            return tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{path}: {exc}") from None

    @property
    def query(self) -> str:
        """The SELECT, without a trailing semicolon."""
        return (self.directory / "query.sql").read_text().rstrip().rstrip(";")

    @property
    def description(self) -> str:
        return self._spec.get("description", "")

    @property
    def tags(self) -> tuple[str, ...]:
        """dbt's tags (`tags = [...]`), for `tag:NAME` selectors; part of the version, so a
        later version may tag its mart differently."""
        tags = self._spec.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
            raise UserError(f"{self.directory}/mart.toml: tags must be a list of names, "
                            f"got {tags!r}")
        return tuple(tags)

    @property
    def unique_key(self) -> tuple[str, ...]:
        return tuple(self._spec["unique_key"])

    @property
    def check_declarations(self) -> tuple[dict, ...]:
        return tuple(self._spec.get("checks", []))

    @property
    def source_indexes(self) -> tuple[SourceIndex, ...]:
        return tuple(SourceIndex(i["table"], tuple(i["columns"]), i.get("why", ""))
                     for i in self._spec.get("source_indexes", []))

    @property
    def indexes(self) -> list[Index]:
        """The unique index REFRESH ... CONCURRENTLY needs, then the others."""
        result = [Index(f"{self.mart}_key", self.unique_key, True)]
        for columns in self._spec.get("indexes", []):
            result.append(Index(f"{self.mart}__{'_'.join(columns)}", tuple(columns), False))
        for index in result:
            if len(index.name) > 63:
                raise UserError(f"index name {index.name} is longer than PostgreSQL's 63 bytes")
        return result

    @property
    def singular_check_files(self) -> list[Path]:
        return sorted((self.directory / "checks").glob("*.sql"))

    def create_statement(self, schema: str = MART_SCHEMA, options: sql.Composable | None = None,
                         with_data: bool = True) -> sql.Composed:
        """CREATE MATERIALIZED VIEW schema.<mart> AS <this version's query>."""
        return create_view_statement(sql.Identifier(schema, self.mart), self.query,
                                     options=options, with_data=with_data)

    def index_statements(self, schema: str = MART_SCHEMA,
                         table: str | None = None) -> list[sql.Composed]:
        """CREATE INDEX for each index of this version, on schema.<mart> (or schema.<table>)."""
        return [sql.SQL("CREATE {unique}INDEX {name} ON {ident} ({columns})").format(
            unique=sql.SQL("UNIQUE " if index.unique else ""), name=sql.Identifier(index.name),
            ident=sql.Identifier(schema, table or self.mart),
            columns=sql.SQL(", ").join(sql.Identifier(c) for c in index.columns))
            for index in self.indexes]


@contextlib.contextmanager
def binding_search_path(cur):
    """The search_path under which the project creates views (marts, checks): pg_catalog
    first, then the source schema (contract.current: the migration's choice, else the one
    the installed marts read), then the marts' schema, and pg_temp last so a temporary
    table never shadows a source. A view binds its names and operators when it is created,
    so this is also what it reads later, whatever the search_path of the session that
    reads it: an empty `drugs` earlier on a session's path is never read."""
    from . import contract  # contract builds on this module's names

    cur.execute("SELECT current_setting('search_path')")
    previous = cur.fetchone()[0]
    schemas = dict.fromkeys([contract.current(cur), MART_SCHEMA])
    path = sql.SQL("pg_catalog, {}, pg_temp").format(
        sql.SQL(", ").join(sql.Identifier(s) for s in schemas))
    cur.execute("SELECT set_config('search_path', %s, true)", (path.as_string(cur),))
    yield  # on an error the transaction is rolled back, and the setting with it
    cur.execute("SELECT set_config('search_path', %s, true)", (previous,))


def create_view_statement(ident: sql.Composable, body: str, *, materialized: bool = True,
                          temporary: bool = False, options: sql.Composable | None = None,
                          with_data: bool | None = True) -> sql.Composed:
    """The one way this project writes CREATE [TEMP] [MATERIALIZED] VIEW ... AS <query>:
    marts from their versioned SQL, rebuilt dependents from their saved definitions, and
    the probe that `diff` compiles."""
    kind = "MATERIALIZED VIEW" if materialized else "VIEW"
    statement = sql.SQL("CREATE {temp}{kind} {ident}{options} AS\n{body}").format(
        temp=sql.SQL("TEMP " if temporary else ""), kind=sql.SQL(kind), ident=ident,
        options=options or sql.SQL(""), body=sql.SQL(body.rstrip().rstrip(";")))
    if materialized and with_data is not None:
        statement += sql.SQL("\nWITH DATA" if with_data else "\nWITH NO DATA")
    return statement


@dataclass(frozen=True)
class Mart:
    name: str
    directory: Path

    @property
    def versions(self) -> list[int]:
        found = (_VERSION_DIR.match(p.name) for p in self.directory.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    @property
    def latest_version(self) -> int:
        return self.versions[-1]

    def version_dir(self, number: int) -> Path:
        return self.directory / f"v{number}"

    def version(self, number: int) -> MartVersion:
        """Version `number`, or a UserError naming the directory that is missing."""
        directory = self.version_dir(number)
        if not (directory / "query.sql").exists():
            raise UserError(f"{self.name} has no version {number}: expected {directory}/query.sql")
        return MartVersion(self.name, number, directory)

    @property
    def latest(self) -> MartVersion:
        return self.version(self.latest_version)


@cache
def marts() -> dict[str, Mart]:
    """All marts, by name, in name order."""
    dirs = sorted(p for p in SQL_DIR.iterdir()
                  if p.is_dir() and any((v / "query.sql").exists() for v in p.glob("v*")))
    return {d.name: Mart(d.name, d) for d in dirs}


def get(name: str) -> Mart:
    """The mart called `name`, or a UserError naming the closest and the valid names."""
    from .selection import unknown  # selection reads tags from here

    known = marts()
    if name not in known:
        raise unknown("mart", name, known)
    return known[name]
