"""The pg_cron job this project installs (`bioloupe-views cron install`): its name, and its
removal when the project schema goes away, so no job is left calling a procedure that no
longer exists."""

from __future__ import annotations

JOB_NAME = "bioloupe-views-refresh"


def unschedule_all(cur) -> list[int]:
    """Remove this database's jobs of that name, whoever scheduled them (the migration's
    role must own them or be a superuser). Returns their ids; none when pg_cron is absent."""
    cur.execute("SELECT to_regclass('cron.job') IS NOT NULL")
    if not cur.fetchone()[0]:
        return []
    cur.execute("SELECT jobid FROM cron.job WHERE jobname = %s AND database = current_database()",
                (JOB_NAME,))
    jobs = [jobid for (jobid,) in cur.fetchall()]
    for jobid in jobs:
        cur.execute("SELECT cron.unschedule(%s::bigint)", (jobid,))
    return jobs
