"""`bioloupe-views cron install|status|remove`: let PostgreSQL refresh its own marts with pg_cron.

The job is one statement, `CALL bioloupe_views.refresh_all(...)`: pg_cron lets a procedure
COMMIT only when the job's command is that single CALL, and the procedure is the same
refresh, checks, lock and run log as `refresh-views` (see sql/_project/v1.sql). pg_cron
runs jobs only in the database named by cron.database_name, so that is where the marts and
the job must be; `install` creates the extension there when it is missing (a superuser's
right). Debian's pg_cron is 1.4: five-field schedules in whole minutes, no seconds.
"""

from __future__ import annotations

import json
import re

import click
import psycopg2
import psycopg2.errors
from psycopg2 import sql

from .. import definitions, mart_graph, selection, standby
from ..cron_job import JOB_NAME
from ..definitions import in_project
from .common import dsn_option, friendly_errors, selection_options
from ..config import resolve_dsn
from ..db import connect, first_line, require_migrated
from ..errors import UserError

_MACROS = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually",
           "@reboot", "@restart")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (field, lowest, highest, names counted from lowest): pg_cron 1.4's entry.c, Vixie cron's.
_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_ITEM = re.compile(r"^(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/([0-9]+))?$", re.I)
_HIDDEN = object()


class PgCronError(UserError):
    """pg_cron is missing, not loaded, or set up for another database."""


def validate_schedule(schedule: str) -> str:
    """The schedule in pg_cron 1.4's syntax, or a UserError. pg_cron itself silently ignores
    a sixth field, so `* * * * * *` (seconds, as in 1.5+) would not do what it says."""
    text = " ".join(schedule.split())
    reason = _schedule_problem(text)
    if reason:
        raise UserError(
            f"invalid schedule {schedule!r}: {reason}; pg_cron 1.4 takes 'minute hour day-of-month "
            "month day-of-week' (e.g. '*/15 * * * *') or a macro (@hourly, @daily, @weekly, "
            "@monthly, @yearly, @reboot), in whole minutes: no seconds")
    return text


def _schedule_problem(text: str) -> str | None:
    if text.startswith("@"):
        return None if text in _MACROS else f"unknown macro {text!r} (macros are lower case)"
    fields = text.split(" ")
    if len(fields) != 5:
        return f"{len(fields)} field{'s' if len(fields) != 1 else ''} instead of 5"
    for value, (name, low, high, names) in zip(fields, _FIELDS):
        for item in value.split(","):
            match = _ITEM.match(item)
            if not match:
                return f"bad {name} {item!r}"
            star, first, last, step = match.groups()
            if first and step and not last:
                return f"bad {name} {item!r} (a step needs a range: use '*/{step}' or 'a-b/{step}')"
            try:
                start, stop = (low, high) if star else (_number(first, low, high, names),
                                                         _number(last or first, low, high, names))
            except ValueError:
                return f"{name} {item!r} is outside {low}-{high}"
            if start > stop or (step is not None and int(step) == 0):
                return f"bad {name} range {item!r}"
    return None


def _number(token: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if token.lower() in names:
        return names.index(token.lower()) + low
    if not token.isdigit() or not low <= int(token) <= high:
        raise ValueError(token)
    return int(token)


def _setting(cur, name: str):
    """A server setting; None when it does not exist; _HIDDEN when this role may not read it."""
    try:
        cur.execute("SELECT current_setting(%s, true)", (name,))
        return cur.fetchone()[0]
    except psycopg2.errors.InsufficientPrivilege:
        return _HIDDEN


def _enable_steps(dbname: str, preload: str | None = None) -> str:
    libraries = ", ".join([*(lib.strip() for lib in (preload or "").split(",") if lib.strip()),
                           "pg_cron"])
    return (f"add shared_preload_libraries = '{libraries}' and cron.database_name = '{dbname}' to "
            f"postgresql.conf, restart PostgreSQL, then run CREATE EXTENSION pg_cron; in database "
            f"{dbname} as a superuser (or let `bioloupe-views cron install` do it)")


def check_pg_cron(conn, create: bool) -> dict:
    """Stop, saying how to enable pg_cron, unless it can run jobs in this database. With
    `create`, create the extension here when missing. Returns what the messages need."""
    with conn.cursor() as cur:
        cur.execute("SELECT current_database(), current_setting('server_version_num')::int / 10000,"
                    " (SELECT installed_version FROM pg_available_extensions WHERE name = 'pg_cron'),"
                    " EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_cron')")
        dbname, major, installed, available = cur.fetchone()
        if not available:
            raise PgCronError(f"the pg_cron extension is not installed on the server: install it "
                              f"(apt-get install postgresql-{major}-cron), then {_enable_steps(dbname)}")
        preload = _setting(cur, "shared_preload_libraries")
        if preload is not _HIDDEN and "pg_cron" not in [
                lib.strip().strip('"') for lib in (preload or "").split(",")]:
            raise PgCronError(f"pg_cron is installed but not loaded: {_enable_steps(dbname, preload)}")
        cron_db = _setting(cur, "cron.database_name")
        if cron_db not in (_HIDDEN, None) and cron_db != dbname:
            raise PgCronError(
                f"pg_cron runs jobs only in database {cron_db!r} (cron.database_name), not in {dbname!r} "
                f"where these marts are: set cron.database_name = '{dbname}' in postgresql.conf, restart "
                f"PostgreSQL, then run CREATE EXTENSION pg_cron; in database {dbname}")
        created = False
        if installed is None:
            if not create:
                raise PgCronError(f"pg_cron is not set up in database {dbname}: run `bioloupe-views "
                                  "cron install --schedule ...` (it creates the extension)")
            require_migrated(conn)  # no extension left behind in a database without marts
            try:
                cur.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
                created = True
            except psycopg2.Error as exc:
                raise PgCronError(f"cannot create the pg_cron extension in database {dbname} "
                                  f"({first_line(exc)}): as a superuser, run CREATE EXTENSION "
                                  f"pg_cron; in database {dbname}") from None
        return {"database": dbname, "created": created,
                "background_workers": _setting(cur, "cron.use_background_workers"),
                "host": _setting(cur, "cron.host")}


def job_command(conn, marts: list[str] | None, changed_only: bool = False,
                strategy: str = "concurrent") -> str:
    """The job's one statement; the mart names become a quoted text[] literal."""
    args = [] if marts is None else [sql.SQL("{}::text[]").format(sql.Literal(list(marts)))]
    if changed_only:
        args.append(sql.SQL("p_changed_only => true"))
    if strategy != "concurrent":
        args.append(sql.SQL("p_strategy => {}").format(sql.Literal(strategy)))
    args = sql.SQL(", ").join(args)
    return sql.SQL("CALL {}.refresh_all({})").format(
        sql.SQL(definitions.PROJECT_SCHEMA), args).as_string(conn)  # as a DBA would type it


def _rows(cur) -> list[dict]:
    return [dict(zip([d.name for d in cur.description], row)) for row in cur.fetchall()]


def _job(cur) -> dict | None:
    """This user's job (cron.schedule() replaces a job of the same name and user)."""
    cur.execute("SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job"
                " WHERE jobname = %s AND username = current_user", (JOB_NAME,))
    rows = _rows(cur)
    return rows[0] if rows else None


@click.group("cron")
def cron_group() -> None:
    """Schedule the in-database refresh with pg_cron (CALL bioloupe_views.refresh_all())."""


@cron_group.command("install")
@dsn_option
@click.option("--schedule", required=True, metavar="CRON",
              help="pg_cron schedule, e.g. '*/15 * * * *' or @hourly (whole minutes).")
@selection_options
@click.option("--changed-only", is_flag=True,
              help="Refresh only the marts whose tracked sources changed (as refresh-views "
                   "--changed-only).")
@click.option("--strategy", type=click.Choice(["concurrent", "swap", "auto"]),
              default="concurrent", show_default=True, envvar="BIOLOUPE_STRATEGY",
              help="How each mart is published (as refresh-views --strategy).")
@friendly_errors
def install_command(dsn, schedule, select, exclude, changed_only, strategy):
    """Create or update the pg_cron job that refreshes the marts (creates the extension if needed)."""
    schedule = validate_schedule(schedule)
    dsn = resolve_dsn(dsn)
    conn = connect(dsn)
    try:
        standby.require_primary(conn, dsn)
        setup = check_pg_cron(conn, create=True)
        graph = mart_graph.load(conn)
        marts = None
        if any(s.strip() for s in select + exclude):
            marts = selection.select(graph.order, graph.upstream, select, exclude,
                                     sources=lambda: mart_graph.sources(conn))
            if not marts:
                raise UserError("the selection matches no mart: check --select and --exclude")
        command = job_command(conn, marts, changed_only, strategy)
        with conn.cursor() as cur:
            before = _job(cur)
            try:
                cur.execute("SELECT cron.schedule(%s, %s, %s)", (JOB_NAME, schedule, command))
            except psycopg2.Error as exc:
                raise UserError(f"pg_cron refused the job: {first_line(exc)}") from None
            job = _job(cur)
    finally:
        conn.close()
    if setup["created"]:
        click.echo(f"Created the pg_cron extension in database {setup['database']}.")
    verb = ("Created" if before is None else
            "Unchanged" if (before["schedule"], before["command"], before["active"]) ==
            (job["schedule"], job["command"], job["active"]) else "Updated")
    click.echo(f"{verb} job {JOB_NAME!r} (id {job['jobid']}) in database {job['database']} as "
               f"{job['username']}: {job['schedule']} -> {job['command']}")
    if setup["background_workers"] not in ("on", _HIDDEN, None):
        host = setup["host"] if setup["host"] not in (_HIDDEN, None) else "localhost"
        click.echo(f"Note: pg_cron connects to {host} through libpq as {job['username']}; allow that "
                   "without a password (pg_hba.conf trust or a .pgpass for the postgres OS user), "
                   "or set cron.use_background_workers = on.")


@cron_group.command("remove")
@dsn_option
@friendly_errors
def remove_command(dsn):
    """Remove the pg_cron job (harmless when there is none)."""
    dsn = resolve_dsn(dsn)
    conn = connect(dsn)
    try:
        standby.require_primary(conn, dsn)
        try:
            check_pg_cron(conn, create=False)
        except PgCronError:
            click.echo(f"No pg_cron job {JOB_NAME!r} here: nothing to remove.")
            return
        with conn.cursor() as cur:
            job = _job(cur)
            if job:
                cur.execute("SELECT cron.unschedule(%s::bigint)", (job["jobid"],))
    finally:
        conn.close()
    click.echo(f"Removed job {JOB_NAME!r} (id {job['jobid']})." if job
               else f"No pg_cron job {JOB_NAME!r} here: nothing to remove.")


_RUNS_SQL = in_project("""
SELECT d.runid, d.status, d.return_message, d.start_time, d.end_time,
       r.run_id, r.status AS refresh_status, r.message,
       (SELECT jsonb_agg(jsonb_build_object('mart', l.mart, 'status', l.status, 'error', l.error)
                         ORDER BY l.id)
        FROM {project}.run_log l WHERE l.run_id = r.run_id) AS marts
FROM cron.job_run_details d
LEFT JOIN LATERAL (
    SELECT * FROM {project}.run r
    WHERE r.trigger = 'pg_cron' AND r.pid = d.job_pid
      AND r.started_at >= d.start_time - interval '1 second'
      AND (d.end_time IS NULL OR r.started_at <= d.end_time)
    ORDER BY r.started_at LIMIT 1
) r ON true
WHERE d.jobid = %s
ORDER BY d.start_time DESC NULLS LAST, d.runid DESC
LIMIT %s
""")


def _summary(run: dict) -> str:
    if run["run_id"] is None:
        return "no refresh recorded" + (f": {run['return_message']}" if run["return_message"] else "")
    counts: dict[str, list[str]] = {}
    for mart in run["marts"] or []:
        counts.setdefault(mart["status"], []).append(mart["mart"])
    parts = [f"{len(ms)} {st}" + ("" if st == "success" else f" ({', '.join(ms)})")
             for st, ms in counts.items()]
    return f"refresh {run['refresh_status']}" + (f": {', '.join(parts)}" if parts else "") + (
        f" ({run['message']})" if run["message"] else "")


@cron_group.command("status")
@dsn_option
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="How many recent runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@friendly_errors
def status_command(dsn, limit, as_json):
    """The job, its schedule, and its last runs (cron.job_run_details beside the run log)."""
    conn = connect(resolve_dsn(dsn))
    try:
        setup = check_pg_cron(conn, create=False)
        require_migrated(conn)
        with conn.cursor() as cur:
            job = _job(cur)
            runs = []
            if job:
                cur.execute(_RUNS_SQL, (job["jobid"], limit))
                runs = _rows(cur)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps({"database": setup["database"], "job": job, "runs": runs},
                              default=str, indent=2))
        return
    if not job:
        click.echo(f"No pg_cron job {JOB_NAME!r} in database {setup['database']}: install it with "
                   "`bioloupe-views cron install --schedule '*/15 * * * *'`.")
        return
    click.echo(f"Job {JOB_NAME!r} (id {job['jobid']}) in database {job['database']} as "
               f"{job['username']}: {'active' if job['active'] else 'INACTIVE'}")
    click.echo(f"  schedule: {job['schedule']}\n  command:  {job['command']}")
    click.echo(f"\nLast {len(runs)} run{'s' if len(runs) != 1 else ''} (cron.job_run_details, "
               "bioloupe_views.run / run_log):" if runs else "\nNo runs yet.")
    for run in runs:
        took = (f"{(run['end_time'] - run['start_time']).total_seconds():.1f}s"
                if run["end_time"] and run["start_time"] else "-")
        start = f"{run['start_time']:%Y-%m-%d %H:%M:%S %Z}" if run["start_time"] else "(not started)"
        click.echo(f"  {start}  {run['status']:<10} {took:>7}  {_summary(run)}")
