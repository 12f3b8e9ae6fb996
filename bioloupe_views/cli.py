"""The command line: `bioloupe-views <command>` and its alias `refresh-views`.

This module only assembles the commands (bioloupe_views/commands/, one module each).
Exit codes: 0 success, 1 refresh or check failure, 2 usage or configuration error. Every
error is one line on stderr; a traceback means a bug.
"""

from __future__ import annotations

import click

from .commands import (check, cron, demo, diff, doctor, graph, new_version, refresh, status,
                       track_sources)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bioloupe-views")
def main() -> None:
    """bioloupe-views: the bioloupe marts as PostgreSQL materialized views."""


for _command in (refresh.refresh_command, check.check_command, status.status_command,
                 graph.graph_command, diff.diff_command, new_version.new_version_command,
                 cron.cron_group, doctor.doctor_command, demo.demo_command,
                 track_sources.track_sources_command):
    main.add_command(_command)


def refresh_views_main() -> None:
    refresh.refresh_views_command(prog_name="refresh-views")
