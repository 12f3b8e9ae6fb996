"""`bioloupe-views new-version NAME`: start a new version of a mart.

A version is whole (its query, unique key, indexes and checks) and immutable once released,
so a new version is a new directory: vN/ is copied to v(N+1)/ for editing, and an Alembic
migration is written, chained to the current head, whose upgrade replaces the mart with
v(N+1) and whose downgrade puts vN back (query, indexes and checks), both through
op.replace_materialized_view (which keeps the dependents, their indexes and grants). The migration comes from the project's own
template (migrations/script.py.mako) through Alembic's ScriptDirectory, like `alembic
revision` would write it.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import definitions
from .common import friendly_errors
from ..errors import UserError

if TYPE_CHECKING:  # Alembic is imported when the command runs: every other command starts faster
    from alembic.config import Config
    from alembic.script import ScriptDirectory

_OPERATION_COMMENT = (
    "# Rebuild {name} from v{version}.sql; every view on top of it is dropped and\n"
    "    # rebuilt, populated, with its indexes, grants and comments. side_by_side=True builds\n"
    "    # everything first and blocks readers only for the swap (docs/changing-a-mart.md).\n"
    "    ")


@dataclass(frozen=True)
class NewVersion:
    mart: str
    version: int
    directory: Path
    migration_path: Path
    revision: str
    down_revision: str | None


def new_version(name: str, config: Config | None = None) -> NewVersion:
    """Copy NAME's latest SQL to the next version and write the migration that applies it."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from .. import migrate
    mart = definitions.get(name)
    current = mart.latest_version
    version = current + 1
    script = ScriptDirectory.from_config(config or Config(str(migrate.ALEMBIC_INI)))
    heads = script.get_heads()
    if len(heads) > 1:
        raise UserError(f"the migrations have several heads ({', '.join(sorted(heads))}): "
                        "merge them first with `alembic merge heads`")
    head = heads[0] if heads else None
    directory = mart.version_dir(version)
    shutil.copytree(mart.version_dir(current), directory)
    query = directory / "query.sql"
    query.write_text(_retitle(query.read_text(), name, current, version))
    try:
        created = script.generate_revision(
            _next_revision(script, head), f"{name} v{version}", head=head or "base",
            upgrades=_call(name, version, comment=True), downgrades=_call(name, current))
    except (CommandError, OSError) as exc:
        shutil.rmtree(directory)
        raise UserError(f"could not write the migration: {exc}") from None
    return NewVersion(name, version, directory, Path(created.path), created.revision, head)


def _call(name: str, version: int, comment: bool = False) -> str:
    prefix = _OPERATION_COMMENT.format(name=name, version=version) if comment else ""
    return f'{prefix}op.replace_materialized_view("{name}", version={version})'


def _retitle(text: str, name: str, old: int, new: int) -> str:
    """The copy's header comment names its own version ("-- mv_x v1: ..." -> "v2")."""
    return re.sub(rf"\A(--\s*{re.escape(name)}\s+v){old}\b", rf"\g<1>{new}", text, count=1)


def _next_revision(script: ScriptDirectory, head: str | None) -> str:
    """The project numbers its revisions (0001, 0002, ...); keep doing so when it can."""
    from alembic.util import CommandError, rev_id

    if head is None:
        candidate = "0001"
    elif head.isdigit():
        candidate = f"{int(head) + 1:0{len(head)}d}"
    else:
        return rev_id()
    try:
        taken = script.get_revision(candidate) is not None
    except CommandError:
        taken = False
    return rev_id() if taken else candidate


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


@click.command("new-version")
@click.argument("name")
@friendly_errors
def new_version_command(name):
    """Start version N+1 of mart NAME: copy its latest SQL and write the migration."""
    created = new_version(name)
    click.echo(f"Created {_shown(created.directory)}/ (a copy of v{created.version - 1}: its "
               "query.sql, mart.toml with indexes and checks, checks/*.sql; edit them)")
    click.echo(f"Created {_shown(created.migration_path)} (revision {created.revision}, revises "
               f"{created.down_revision or 'base'}): upgrade applies v{created.version}, "
               f"downgrade restores v{created.version - 1}")
    click.echo("Next: edit the SQL, run `alembic upgrade head`, then `bioloupe-views diff`.")
