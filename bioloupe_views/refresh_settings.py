"""Settings that change a mart's rows, fixed for every refresh and migration.

mv_development_programs converts dates to timestamptz, as the seed's SQL does, so its rows
depend on the session's TimeZone: a client with PGTZ set would store other values than
pg_cron, and runs would flip rows back and forth. The migration takes these settings from a
plain session on the server's defaults (what the dbt build got), uses them for the marts it
builds, and records them in bioloupe_views.refresh_setting; the database's refresh_view()
applies them to every refresh, whatever the client.
"""

from __future__ import annotations

import os

from .db import connect
from .definitions import in_project

ROW_SETTINGS = ("TimeZone",)
CLIENT_VARIABLES = ("PGTZ", "PGOPTIONS")  # libpq's ways for a client to change them


def server_defaults(dsn: str) -> dict[str, str]:
    """The settings as a plain session gets them: connected without the client's own."""
    saved = {name: os.environ.pop(name) for name in CLIENT_VARIABLES if name in os.environ}
    try:
        conn = connect(dsn)
    finally:
        os.environ.update(saved)
    try:
        with conn.cursor() as cur:
            values = {}
            for name in ROW_SETTINGS:
                cur.execute("SELECT current_setting(%s)", (name,))
                values[name] = cur.fetchone()[0]
            return values
    finally:
        conn.close()


def use(cur, values: dict[str, str]) -> None:
    """Apply the settings to this session's transaction (the migration's)."""
    for name, value in values.items():
        cur.execute("SELECT set_config(%s, %s, true)", (name, value))


def record(cur, values: dict[str, str]) -> None:
    """Store them for refresh_view(), where the project schema has the table."""
    cur.execute(in_project("SELECT to_regclass('{project_text}.refresh_setting') IS NOT NULL"))
    if not cur.fetchone()[0]:
        return
    for name, value in values.items():
        cur.execute(in_project("INSERT INTO {project}.refresh_setting (name, value) VALUES (%s, %s)"
                               " ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
                    (name, value))
