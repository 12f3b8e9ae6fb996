"""The command line: `bioloupe-views <command>` and its alias `refresh-views`.

This module only assembles the commands (bioloupe_views/commands/, one module each).
Exit codes: 0 success, 1 refresh or check failure, 2 usage or configuration error. Every
error is one line on stderr; a traceback means a bug. Every entry point, the group, each
command and `refresh-views`, takes -h/--help and --version, as a new user tries first.
"""

from __future__ import annotations

import click

from .commands import (check, cron, demo, diff, doctor, graph, ls, new_version, refresh,
                       status, track_sources)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
PACKAGE = "bioloupe-views"


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name=PACKAGE)
def main() -> None:
    """bioloupe-views: the bioloupe marts as PostgreSQL materialized views."""


for _command in (refresh.refresh_command, check.check_command, status.status_command,
                 graph.graph_command, ls.ls_command, diff.diff_command,
                 new_version.new_version_command,
                 cron.cron_group, doctor.doctor_command, demo.demo_command,
                 track_sources.track_sources_command):
    main.add_command(_command)


def _with_version(command: click.Command) -> None:
    """--version on a command and on each subcommand of a group (-h is inherited from the
    group's context settings, --version is not)."""
    if not any(isinstance(p, click.Option) and "--version" in p.opts for p in command.params):
        click.version_option(package_name=PACKAGE)(command)
    for sub in getattr(command, "commands", {}).values():
        _with_version(sub)


def refresh_views_main() -> None:
    refresh.refresh_views_command(prog_name="refresh-views", **CONTEXT_SETTINGS)


def _version_everywhere() -> None:
    for command in main.commands.values():
        _with_version(command)
    _with_version(refresh.refresh_views_command)


_version_everywhere()
