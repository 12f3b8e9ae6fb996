"""`bioloupe-views status`: one row per mart, for the operator on call.

What the catalog says now (populated, estimated rows, size with indexes) beside what the run
log says happened (the last successful refresh: when, how long, mode, trigger; the outcome of
the last finished attempt; the last check results; the time since the data was last built).
A run in progress is shown apart, on a line of its own, never as the marts' last refresh.
The one definition of "last successful build" (a refresh, or the migration that built the
mart) is `fresh_as_of` in that query, sql/_queries/mart_status.sql, read by STALE and
--max-age alike (docs/status.md). The marts and their order come from the database
(bioloupe_views.refresh_order), and the CLI, pg_cron and Dagster all write the run log read
here, so one command shows every trigger's runs.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from .. import definitions, durations
from .. import mart_graph, missing_marts, revision, selection, sessions, source_tracking
from .common import dsn_option, friendly_errors, retention, selection_options
from ..config import describe, resolve_dsn
from ..db import connect
from ..errors import UserError
from ..definitions import in_project

STATUS_QUERY = definitions.SQL_DIR / "_queries" / "mart_status.sql"
CHECK_STATUSES = ("pass", "warn", "fail", "error")


def _check_counts(checks: list[dict] | None) -> dict | None:
    if checks is None:
        return None
    counts = {s: sum(c.get("status") == s for c in checks) for s in CHECK_STATUSES}
    return {**counts, "total": len(checks)}


def collect(conn) -> dict:
    """The status of every mart and of any refresh running now, as plain data."""
    mart_graph.load(conn)  # the same "not migrated" / privilege errors as every command
    with conn.cursor() as cur:
        cur.execute(STATUS_QUERY.read_text())
        columns = [d.name for d in cur.description]
        rows = [dict(zip(columns, r)) for r in cur.fetchall()]
        cur.execute(in_project("SELECT pid, trigger, run_id::text, since FROM {project}.refresh_lock_holder()"))
        holder = cur.fetchone()
        running_run = holder[2] if holder else None
        cur.execute(in_project("SELECT run_id::text, trigger, status, started_at, ended_at, message"
                    " FROM {project}.run WHERE run_id::text IS DISTINCT FROM %s"
                    " ORDER BY started_at DESC LIMIT 1"), (running_run,))
        last_run = cur.fetchone()
        progress = []
        if running_run:
            cur.execute(in_project("SELECT mart, status FROM {project}.run_log WHERE run_id = %s"
                                   " ORDER BY position, mart"), (running_run,))
            progress = cur.fetchall()
        cur.execute("SELECT now()")
        now = cur.fetchone()[0]
    marts = []
    for r in rows:
        last = None
        if r["status"] is not None:
            last = {k: r[k] for k in ("run_id", "started_at", "ended_at", "duration_seconds",
                                      "mode", "status", "trigger", "error")}
        marts.append({
            "mart": r["mart"], "level": r["level"], "version": r["version"],
            "populated": r["populated"],
            "estimated_rows": r["estimated_rows"] if r["estimated_rows"] >= 0 else None,
            "size_bytes": r["size_bytes"], "size": r["size"],
            "last_refresh": last,
            "checks": _check_counts(r["checks"]),
            "checks_at": r["checks_at"],
            "last_success_at": r["last_success_at"],
            "last_success": None if r["last_success_at"] is None else {
                "ended_at": r["last_success_at"], "duration_seconds": r["success_duration_seconds"],
                "mode": r["success_mode"], "trigger": r["success_trigger"]},
            "fresh_as_of": r["fresh_as_of"],
            "built_by_migration": r["built_by_migration"],
            "stale_seconds": None if r["stale_seconds"] is None else round(r["stale_seconds"], 3),
        })
    running = None
    if holder:
        running = dict(zip(("pid", "trigger", "run_id", "since"), holder))
        running["marts"] = {state: [m for m, s in progress if _progress_state(s) == state]
                            for state in ("running", "pending", "finished")}
    if last_run:
        last_run = dict(zip(("run_id", "trigger", "status", "started_at", "ended_at", "message"),
                            last_run))
    return {"generated_at": now, "running": running, "last_run": last_run, "marts": marts,
            "sources": _sources(conn)}


def _progress_state(status: str) -> str:
    return status if status in ("running", "pending") else "finished"


def _sources(conn) -> list[dict]:
    """Each source and since when its writes are logged (empty before the change log)."""
    with conn.cursor() as cur:
        try:
            found = source_tracking.sources(cur)[1]
        except UserError:
            return []
    return [{"source": s.label, "tracked": s.tracked, "tracked_since": s.since} for s in found]


def _tracking_line(sources: list[dict]) -> str | None:
    if not sources:
        return None
    tracked = [s for s in sources if s["tracked"]]
    if not tracked:
        return (f"Source tracking: none of {len(sources)} sources is tracked "
                "(`bioloupe-views track-sources` prints how).")
    latest = max(tracked, key=lambda s: s["tracked_since"] or "9999")
    since = latest["tracked_since"] or "the next run"
    return (f"Source tracking: {len(tracked)} of {len(sources)} sources tracked; the latest "
            f"start {since} ({latest['source']}); `bioloupe-views doctor` lists each.")


# --- the table -------------------------------------------------------------------------

def _age(seconds: float | None) -> str:
    """In the duration grammar the options take (2m37s): an age printed here can be given
    back as --max-age."""
    return "-" if seconds is None else durations.format(int(max(0, seconds)))


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "never"


def _checks_cell(counts: dict | None) -> str:
    if not counts:
        return "-"
    parts = [f"{counts[s]} {s}" for s in CHECK_STATUSES if counts[s]]
    return ", ".join(parts) or "none"


def _rows_cell(mart: dict) -> str:
    if not mart["populated"]:
        return "-"
    return "?" if mart["estimated_rows"] is None else f"{mart['estimated_rows']:,}"


# LAST REFRESH, TOOK, MODE and TRIGGER: the last successful build (a refresh, or the migration
# that built the mart: "built <when>"); STATUS: the outcome of the last finished attempt.
HEADERS = ("MART", "POPULATED", "ROWS (EST.)", "SIZE", "LAST REFRESH", "TOOK", "MODE", "TRIGGER",
           "STATUS", "CHECKS", "STALE")


def _last_build(mart: dict) -> tuple[str, str, str, str]:
    """LAST REFRESH, TOOK, MODE, TRIGGER: of the build fresh_as_of names."""
    if mart["built_by_migration"]:
        return f"built {_when(mart['fresh_as_of'])}", "-", "-", "migration"
    ok = mart["last_success"]
    if ok is None:
        return "never", "-", "-", "-"
    took = ok["duration_seconds"]
    return (_when(ok["ended_at"]), "-" if took is None else f"{took:.2f}s", ok["mode"] or "-",
            ok["trigger"] or "-")


def table_rows(status: dict) -> list[tuple[str, ...]]:
    rows = []
    for m in status["marts"]:
        last = m["last_refresh"] or {}
        rows.append((
            m["mart"], "yes" if m["populated"] else "NO", _rows_cell(m), m["size"],
            *_last_build(m), last.get("status") or "-", _checks_cell(m["checks"]),
            _age(m["stale_seconds"]) if m["populated"] else "unpopulated",
        ))
    return rows


def render(status: dict, target: str) -> str:
    rows = [HEADERS, *table_rows(status)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    right = {2, 3, HEADERS.index("TOOK")}
    lines = [f"Marts on {target}, in refresh order:", ""]
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    failed = [m for m in status["marts"]
              if m["last_refresh"] and m["last_refresh"]["status"] not in ("success", "unchanged")]
    if failed:
        lines += ["", "Last refresh not successful (the mart keeps its last good data):"]
        for m in failed:
            last = m["last_refresh"]
            lines.append(f"  {m['mart']}: {last['status']}: {last['error'] or 'checks failed'}")
    running, last_run = status["running"], status["last_run"]
    lines.append("")
    if last_run:
        message = f": {last_run['message']}" if last_run["message"] else ""
        state = last_run["status"]
        if state == "running" and not running:  # its session ended: a crash, a lost client
            state = "interrupted"
            message = (": its session ended before it finished (the next run closes it as "
                       "abandoned; marts it did not publish keep their data)")
        lines.append(f"Last run: {state} ({last_run['trigger']}), started "
                     f"{_when(last_run['started_at'])}{message}.")
    if running:
        lines.append(_running_line(running))
    else:
        lines.append("No refresh is running.")
    tracking = _tracking_line(status.get("sources") or [])
    if tracking:
        lines.append(tracking)
    return "\n".join(lines)


def _running_line(running: dict) -> str:
    since = _when(running["since"]) if running["since"] else "?"
    if not running["run_id"]:  # the lock taken outside a run (by hand, or an older client)
        return (f"A refresh is running now: pid {running['pid']} "
                f"({running['trigger'] or 'unknown trigger'}), since {since}.")
    marts = running["marts"]
    parts = [f"{', '.join(marts['running'])} running"] if marts["running"] else []
    parts += [f"{len(marts[s])} {s}" for s in ("pending", "finished") if marts[s]]
    return (f"Running now: run {running['run_id']} ({running['trigger']}, pid {running['pid']}) "
            f"since {since}: {', '.join(parts) or 'starting'}.")


def _jsonable(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def overdue(status: dict, max_age_seconds: float) -> list[str]:
    """The marts whose last successful build (fresh_as_of, as STALE: a refresh or the
    migration that built it) is older than the limit, or that have none (unpopulated), as
    `name (age)` for a monitoring line."""
    result = []
    for m in status["marts"]:
        built = m["fresh_as_of"]
        if built is None:
            result.append(f"{m['mart']} ({'never' if m['populated'] else 'unpopulated'})")
        else:
            age = (status["generated_at"] - built).total_seconds()
            if age > max_age_seconds:
                how = "built by the migration " if m["built_by_migration"] else ""
                result.append(f"{m['mart']} ({how}{_age(age)} ago)")
    return result


@click.command("status")
@dsn_option
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
@click.option("--max-age", default=None, metavar="DURATION", callback=retention,
              help="Exit 1, naming them, if any mart's last successful refresh is older than "
                   "this (e.g. 2h, 1h30m; a bare number is seconds) or never happened: for "
                   "monitoring.")
@friendly_errors
def status_command(dsn, select, exclude, as_json, max_age):
    """Each mart: populated, rows, size, last refresh, last checks and staleness."""
    dsn = resolve_dsn(dsn)
    conn = connect(dsn)
    try:
        graph = mart_graph.load(conn)
        chosen = set(selection.select(graph.order, graph.upstream, select, exclude,
                                      sources=lambda: mart_graph.sources(conn)))
        status = collect(conn)
        # The selected marts' rows, and --max-age over them only.
        status["marts"] = [m for m in status["marts"] if m["mart"] in chosen]
        missing = missing_marts.find(conn)
        leftover = sessions.find(conn)
        pending = revision.compare(conn)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps({"target": describe(dsn), **status, "leftover_sessions":
                               [s.as_json() for s in leftover],
                               "revision": None if pending is None else {
                                   "database": pending.database, "head": pending.head}},
                              indent=2, default=_jsonable))
    else:
        click.echo("\n".join([render(status, describe(dsn)), *sessions.report_lines(leftover)]))
    if pending and pending.note:
        click.echo(pending.note, err=True)
    missing_marts.require_none(missing)  # after the table: the others' status still shows
    if max_age is not None:
        late = overdue(status, durations.seconds(max_age))
        if late:
            limit = durations.format(durations.seconds(max_age))
            click.echo(f"Error: last successful refresh older than {limit}: "
                       f"{', '.join(late)}", err=True)
            sys.exit(1)
