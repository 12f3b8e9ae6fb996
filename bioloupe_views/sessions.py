"""Leftover sessions: the tool's sessions that outlived their run and still hold what a
refresh waits for (sql/_queries/leftover_sessions.sql); and who holds a mart whose VACUUM
could not get its lock (sql/_queries/relation_lockers.sql).

A worker whose client died mid-refresh keeps the lock its REFRESH took on the mart until
its backend notices (the engine's sessions check their client every second,
engine.CLIENT_CHECK, but a backend of an older version of the tool, or one stuck where the
check cannot reach, may not). `status` and `doctor` list them with the statement that ends
them; `refresh-views` reports them in one line and does not queue behind them (its waits
for mart locks outside the refresh are bounded).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from . import definitions

QUERY = definitions.SQL_DIR / "_queries" / "leftover_sessions.sql"
LOCK_WAITS_QUERY = definitions.SQL_DIR / "_queries" / "lock_waits.sql"
LOCKERS_QUERY = definitions.SQL_DIR / "_queries" / "relation_lockers.sql"


@dataclass
class Leftover:
    pid: int
    application: str
    state: str | None
    age_seconds: float | None
    holds: list[str]

    def describe(self) -> str:
        age = "age unknown" if self.age_seconds is None else f"connected {age_text(self.age_seconds)} ago"
        state = f", {self.state}" if self.state else ""
        return f"pid {self.pid} ({self.application}, {age}{state}) holds {', '.join(self.holds)}"

    @property
    def fix(self) -> str:
        return f"SELECT pg_catalog.pg_terminate_backend({self.pid});"

    def as_json(self) -> dict:
        return {"pid": self.pid, "application_name": self.application, "state": self.state,
                "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 3),
                "holds": self.holds, "fix": self.fix}


def age_text(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds}s"


def find(conn) -> list[Leftover]:
    """The leftover sessions, oldest first; none where the project schema is not installed
    or this role may not read the run log."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                    (f"{definitions.PROJECT_SCHEMA}.run",))
        if not cur.fetchone()[0]:
            return []
        try:
            cur.execute(QUERY.read_text(), {"schema": definitions.MART_SCHEMA})
        except psycopg2.errors.InsufficientPrivilege:
            return []  # a role that may not read the run log (a reader's doctor)
        return [Leftover(pid, app, state, age, list(holds))
                for pid, app, state, age, holds in cur.fetchall()]


def one_line(found: list[Leftover]) -> str:
    """What refresh-views prints before it starts."""
    fixes = " ".join(s.fix for s in found)
    return (f"Leftover session{'s' if len(found) != 1 else ''} of earlier runs: "
            f"{'; '.join(s.describe() for s in found)}. A mart they lock is refreshed without "
            f"waiting for them (VACUUM skipped, a bounded lock wait); end them with {fixes}")


def report_lines(found: list[Leftover]) -> list[str]:
    """What `status` and `doctor` print: nothing when there are none."""
    if not found:
        return []
    lines = ["", "Leftover sessions of earlier runs (they hold what a refresh waits for):"]
    lines += [f"  {s.describe()}" for s in found]
    lines.append("End them with:")
    lines += [s.fix for s in found]
    return lines


def vacuum_skipped(conn, mart: str) -> str:
    """The line of a mart whose VACUUM gave up waiting for its lock: who holds that lock."""
    name = f"{definitions.MART_SCHEMA}.{mart}"
    try:
        with conn.cursor() as cur:
            regclass = sql.Identifier(definitions.MART_SCHEMA, mart).as_string(cur)
            cur.execute(LOCKERS_QUERY.read_text(), {"relation": regclass})
            holders = cur.fetchall()
    except psycopg2.Error:
        holders = []
    if not holders:
        return f"VACUUM skipped: {name} was locked by another session (gone by now)"
    return f"VACUUM skipped: {name} is locked by " + " and ".join(
        _holder(*row) for row in holders)


def _holder(pid, user, app, state, query, mode) -> str:
    """pid N (user, application, query), as much of the query as fits on a line; never a
    query that may carry a password."""
    if pid is None:
        return f"a prepared transaction ({mode}; see pg_prepared_xacts)"
    text = " ".join((query or "").split())
    if "password" in text.lower():
        text = "its query mentions a password: not shown"
    elif len(text) > 80:
        text = text[:77] + "..."
    if state and state != "active":
        text = f"{state}: {text}" if text else state
    return f"pid {pid} ({user or '?'}, {app or 'no application name'}, {text or '?'})"


def lock_waits(cur, run_id: str, seconds: float) -> dict[str, str]:
    """The line for each mart of the run that has waited on a lock for `seconds` or more,
    naming the sessions it waits for (pg_blocking_pids): by mart."""
    cur.execute(LOCK_WAITS_QUERY.read_text(), {"run": run_id, "seconds": seconds})
    found: dict[str, list] = {}
    for mart, pid, user, app, state, query, mode, waited in cur.fetchall():
        found.setdefault(mart, [waited, []])[1].append(_holder(pid, user, app, state, query, mode))
    return {mart: f"{mart} has waited {waited}s for a lock held by {' and '.join(holders)}; "
                  "it goes on when that session lets go (or end it with pg_terminate_backend)"
            for mart, (waited, holders) in found.items()}

