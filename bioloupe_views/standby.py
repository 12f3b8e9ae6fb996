"""Primary or hot standby: what the tool may do where it is connected.

A hot standby is read-only, so a refresh, a migration or a pg_cron job can only run on the
primary; there they fail with PostgreSQL's "cannot execute UPDATE in a read-only transaction"
deep inside the engine. `require_primary()` turns that into one line that says where to point
the DSN, before anything starts; the same for a session on the primary that is read-only by
default (default_transaction_read_only from the DSN's options, PGOPTIONS, or a role's or the
database's default).

Reading the marts on a standby is what standbys are for, and works: REFRESH ... CONCURRENTLY
on the primary changes the marts with ordinary row changes, which the standby replays without
a lock its readers would wait for (the ExclusiveLock it takes on the primary is not written to
WAL; only ACCESS EXCLUSIVE locks are). What can still hurt readers there is replay itself:

- a plain refresh (`--no-concurrently`, an unpopulated mart, a migration replacing a mart)
  takes ACCESS EXCLUSIVE, which the standby replays: its readers of that mart wait until the
  primary commits and the standby replays the commit;
- VACUUM on the primary (autovacuum, or the one refresh-views runs before each mart's
  refresh) removes the dead rows the previous concurrent refresh left; replaying that removal conflicts with a standby query
  whose snapshot could still see them. The standby waits `max_standby_streaming_delay` (30s by
  default), then cancels the query. `hot_standby_feedback = on` avoids the conflict (the
  primary keeps those rows until the standby's queries end).

`describe()` gathers those settings and the conflicts the standby has already counted, for
`doctor`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import describe as describe_dsn
from .errors import ConfigError


class StandbyError(ConfigError):
    """Connected to a hot standby for something that writes: point the DSN at the primary."""


class ReadOnlySessionError(ConfigError):
    """A primary, but a session whose transactions are read-only by default."""


# Where default_transaction_read_only came from (pg_settings.source), in the user's terms.
READ_ONLY_SOURCES = {
    "client": "the DSN's options or PGOPTIONS",
    "user": "the role's default (ALTER ROLE ... SET)",
    "database": "the database's default (ALTER DATABASE ... SET)",
    "database user": "the role's default in this database (ALTER ROLE ... IN DATABASE ... SET)",
    "configuration file": "the server's configuration (postgresql.conf or ALTER SYSTEM)",
}


def in_recovery(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery()")
        return cur.fetchone()[0]


def require_primary(conn, dsn: str) -> None:
    """Stop with one line when `conn` is a hot standby, or a session on the primary whose
    transactions are read-only (default_transaction_read_only = on), before anything writes."""
    if in_recovery(conn):
        raise StandbyError(f"this server ({describe_dsn(dsn)}) is a hot standby (read-only): "
                           "point the DSN at the primary")
    with conn.cursor() as cur:
        cur.execute("SELECT pg_catalog.current_setting('transaction_read_only')")
        read_only = cur.fetchone()[0]
        source = None
        if read_only == "on":  # pg_settings only then: it is a whole table function
            cur.execute("SELECT s.source FROM pg_catalog.pg_settings s"
                        " WHERE s.name = 'default_transaction_read_only'")
            source = cur.fetchone()[0]
    if read_only == "on":
        found = READ_ONLY_SOURCES.get(source)
        origin = f", set by {found}" if found else ""
        raise ReadOnlySessionError(
            f"the session on {describe_dsn(dsn)} is read-only (default_transaction_read_only = "
            f"on{origin}): this command writes; remove the setting from the DSN's options or "
            "PGOPTIONS, or the role's or database's default (ALTER ROLE/DATABASE ... RESET "
            "default_transaction_read_only)")


@dataclass
class StandbyState:
    hot_standby_feedback: str
    max_standby_streaming_delay: str
    last_replay: str | None          # when the last replayed transaction committed on the primary
    conflicts: dict[str, int]        # this database's queries cancelled by replay, by cause

    def advice(self) -> list[str]:
        """What a reader of the marts on this standby should know, one line each."""
        lines = [
            "refresh-views, alembic and the CREATE INDEX statements above run on the primary; "
            "the marts can be read here",
            "a concurrent refresh on the primary never blocks readers here; a plain one "
            "(--no-concurrently, an unpopulated mart, replacing a mart) makes them wait for "
            "its commit",
        ]
        if self.hot_standby_feedback == "on":
            lines.append("hot_standby_feedback = on: VACUUM on the primary keeps the rows this "
                         "standby's queries still see, so none is cancelled for it (the marts' "
                         "dead rows stay on the primary while long queries run here)")
        else:
            lines.append(f"hot_standby_feedback = off: a query here that runs longer than "
                         f"max_standby_streaming_delay ({self.max_standby_streaming_delay}) "
                         "while VACUUM on the primary cleans a mart can be cancelled; for long "
                         "reports here, set hot_standby_feedback = on")
        cancelled = sum(self.conflicts.values())
        if cancelled:
            causes = ", ".join(f"{n} {cause}" for cause, n in self.conflicts.items() if n)
            lines.append(f"WARNING: {cancelled} queries in this database were cancelled by "
                         f"recovery conflicts since the statistics were reset ({causes})")
        else:
            lines.append("no query in this database has been cancelled by a recovery conflict")
        return lines


CONFLICT_COLUMNS = ("confl_snapshot", "confl_lock", "confl_bufferpin", "confl_deadlock",
                    "confl_tablespace")


def state(conn) -> StandbyState:
    """The standby's settings that matter to readers of the marts, and its conflicts so far."""
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('hot_standby_feedback'),"
                    " current_setting('max_standby_streaming_delay'),"
                    " to_char(pg_last_xact_replay_timestamp(), 'YYYY-MM-DD HH24:MI:SS TZ')")
        feedback, delay, last = cur.fetchone()
        cur.execute(f"SELECT {', '.join(CONFLICT_COLUMNS)} FROM pg_stat_database_conflicts"
                    " WHERE datname = current_database()")
        row = cur.fetchone() or (0,) * len(CONFLICT_COLUMNS)
    conflicts = {c.removeprefix("confl_"): n for c, n in zip(CONFLICT_COLUMNS, row)}
    return StandbyState(feedback, delay, last, conflicts)
