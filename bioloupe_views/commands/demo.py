"""`bioloupe-views demo`: the whole flow on a throwaway server (bioloupe_views.dev.demo)."""

from __future__ import annotations

import sys

import click

from .common import friendly_errors


@click.command("demo")
@click.option("--scale", type=click.FloatRange(0.01, 100), default=1.0, show_default=True,
              help="Synthetic data size; 1 is about 1/60 of production.")
@click.option("--keep", is_flag=True, help="Leave the server running and print its DSN.")
@click.option("--stop", is_flag=True, help="Stop a server left running by --keep.")
@friendly_errors
def demo_command(scale, keep, stop):
    """Start a throwaway PostgreSQL, load synthetic sources, migrate, refresh and show the marts."""
    from ..dev import demo  # development tooling: loaded only when asked for

    if stop:
        demo.stop()
    else:
        sys.exit(demo.run(scale=scale, keep=keep))
