"""The Dagster resource: the same settings as the CLI, resolved the same way.

The DSN comes from bioloupe_views.config (BIOLOUPE_DATABASE_URL, the BIOLOUPE_DB_* variables,
libpq's environment) when the step runs, never when definitions load, so a code server
starts while the database is down. Set `dsn` (e.g. dg.EnvVar("...")) to override it.
"""

from __future__ import annotations

from typing import Optional

import dagster as dg

from .. import durations, engine, heap_upkeep
from ..config import resolve_dsn
from ..errors import ConfigError


def _duration(name: str, value: str | None) -> str | None:
    """The same grammar as the CLI's (durations.py): a bare number is seconds."""
    if value is not None and not durations.is_duration(value):
        raise ConfigError(f"bioloupe_views resource: {name}={value!r} is not a duration; "
                          f"use e.g. {durations.EXAMPLES}")
    return value


def _setting(name: str, value: str | None) -> str | None:
    """A lock or statement timeout, as PostgreSQL takes it (whole milliseconds)."""
    value = _duration(name, value)
    if value is None:
        return None
    if durations.over_setting_limit(value):
        raise ConfigError(f"bioloupe_views resource: {name}={value!r} is longer than "
                          "PostgreSQL allows (about 24 days)")
    return durations.setting(value)


def _strategy(value: str) -> str:
    if value not in ("concurrent", "swap", "auto"):
        raise ConfigError(f"bioloupe_views resource: strategy={value!r}; use concurrent, swap "
                          "or auto")
    return value


class BioloupeViewsResource(dg.ConfigurableResource):
    """Where the marts are and how to refresh them (refresh-views' options)."""

    dsn: Optional[str] = None
    threads: int = 4
    concurrently: bool = True
    lock_wait: str = "5min"          # how long a step waits for a refresh already running
    lock_timeout: Optional[str] = None
    statement_timeout: Optional[str] = None
    log_retention: str = "90d"
    changed_only: bool = False       # refresh only marts whose inputs changed (track-sources)
    vacuum: bool = True              # keep each mart's size bounded (refresh-views --vacuum)
    compact_up_to: int = heap_upkeep.DEFAULT_UP_TO   # bytes; refresh-views --compact-up-to
    strategy: str = "concurrent"     # concurrent | swap | auto (refresh-views --strategy)

    def resolved_dsn(self) -> str:
        return resolve_dsn(self.dsn)

    def options(self, run_id: str) -> engine.Options:
        """engine.Options for one Dagster run: trigger 'dagster', its run id as the ref."""
        return engine.Options(
            concurrently=self.concurrently, threads=self.threads,
            changed_only=self.changed_only, vacuum=self.vacuum,
            compact_up_to=self.compact_up_to, strategy=_strategy(self.strategy),
            lock_timeout=_setting("lock_timeout", self.lock_timeout),
            statement_timeout=_setting("statement_timeout", self.statement_timeout),
            wait=durations.seconds(_duration("lock_wait", self.lock_wait)),
            retention=durations.interval(_duration("log_retention", self.log_retention)),
            trigger="dagster", trigger_ref=run_id)
