"""The refresh lock, as migrations take it: a migration that replaces a mart or changes the
project schema must not run beside a refresh (the refresh would publish into relations the
migration is dropping, or deadlock with its DDL). It waits for a running refresh in short
steps, bounded like the swap's lock waits, then stops with one line naming the holder.

The lock is a session advisory lock (try_refresh_lock()); a migration keeps it until its
session ends, after its transaction has committed.
"""

from __future__ import annotations

import time

from . import durations
from .definitions import in_project
from .errors import UserError

DEFAULT_LOCK_TIMEOUT = "2s"
DEFAULT_LOCK_RETRIES = 10


class RefreshRunningError(UserError):
    """A refresh kept the lock for longer than the migration may wait."""


def hold(cur, what: str, lock_timeout: str | None = DEFAULT_LOCK_TIMEOUT,
         lock_retries: int = DEFAULT_LOCK_RETRIES) -> float:
    """Take the refresh lock for `what` ("replace mv_x"), waiting up to lock_timeout times
    (lock_retries + 1); returns the seconds waited."""
    started = time.perf_counter()
    limit = (durations.seconds(lock_timeout) if lock_timeout else 0) * (lock_retries + 1)
    while True:
        cur.execute(in_project("SELECT {project}.try_refresh_lock()"))
        if cur.fetchone()[0]:
            return time.perf_counter() - started
        if time.perf_counter() - started >= limit:
            cur.execute(in_project("SELECT message FROM {project}.refresh_lock_holder()"))
            holder = cur.fetchone()
            raise RefreshRunningError(
                f"cannot {what} while a refresh runs "
                f"({holder[0] if holder else 'another refresh holds the lock'}, waited "
                f"{time.perf_counter() - started:.1f}s): retry when it is done")
        time.sleep(0.1)


def release(cur) -> None:
    cur.execute(in_project("SELECT {project}.release_refresh_lock()"))
