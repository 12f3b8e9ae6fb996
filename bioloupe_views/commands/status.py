"""`bioloupe-views status`: one row per mart, for the operator on call.

What the catalog says now (populated, estimated rows, size with indexes) beside what the run
log says happened (the last refresh: when, how long, mode, status, trigger; the last check
results; the time since the data was last built). The query is sql/_queries/mart_status.sql;
the marts and their order come from the database (bioloupe_views.refresh_order), and both
the CLI and pg_cron write the run log read here, so one command shows either trigger's runs.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from .. import definitions, durations
from .. import mart_graph, missing_marts, sessions, source_tracking
from .common import dsn_option, friendly_errors
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
        cur.execute(in_project("SELECT run_id::text, trigger, status, started_at, ended_at, message"
                    " FROM {project}.run ORDER BY started_at DESC LIMIT 1"))
        last_run = cur.fetchone()
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
            "fresh_as_of": r["fresh_as_of"],
            "stale_seconds": None if r["stale_seconds"] is None else round(r["stale_seconds"], 3),
        })
    running = None
    if holder:
        running = dict(zip(("pid", "trigger", "run_id", "since"), holder))
    if last_run:
        last_run = dict(zip(("run_id", "trigger", "status", "started_at", "ended_at", "message"),
                            last_run))
    return {"generated_at": now, "running": running, "last_run": last_run, "marts": marts,
            "sources": _sources(conn)}


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
    if seconds is None:
        return "-"
    seconds = int(max(0, seconds))
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60),
                                     ("m", 60, "s", 1)):
        if seconds >= size:
            rest = (seconds % size) // subsize
            return f"{seconds // size}{unit}" + (f" {rest}{sub}" if rest else "")
    return f"{seconds}s"


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


HEADERS = ("MART", "POPULATED", "ROWS (EST.)", "SIZE", "LAST REFRESH", "TOOK", "MODE", "STATUS",
           "TRIGGER", "CHECKS", "STALE")


def table_rows(status: dict) -> list[tuple[str, ...]]:
    rows = []
    for m in status["marts"]:
        last = m["last_refresh"] or {}
        took = last.get("duration_seconds")
        rows.append((
            m["mart"], "yes" if m["populated"] else "NO", _rows_cell(m), m["size"],
            _when(last.get("ended_at") or last.get("started_at")) if last else "never",
            "-" if took is None else f"{took:.2f}s", last.get("mode") or "-",
            last.get("status") or "-", last.get("trigger") or "-", _checks_cell(m["checks"]),
            _age(m["stale_seconds"]) if m["populated"] else "unpopulated",
        ))
    return rows


def render(status: dict, target: str) -> str:
    rows = [HEADERS, *table_rows(status)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    right = {2, 3, 5}
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
        since = _when(running["since"]) if running["since"] else "?"
        lines.append(f"A refresh is running now: pid {running['pid']} "
                     f"({running['trigger'] or 'unknown trigger'}), since {since}.")
    else:
        lines.append("No refresh is running.")
    tracking = _tracking_line(status.get("sources") or [])
    if tracking:
        lines.append(tracking)
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def overdue(status: dict, max_age_seconds: float) -> list[str]:
    """The marts whose last successful refresh is older than the limit, or that never had
    one, as `name (age)` for a monitoring line."""
    result = []
    for m in status["marts"]:
        ok = m["last_success_at"]
        if ok is None:
            result.append(f"{m['mart']} (never)")
        else:
            age = (status["generated_at"] - ok).total_seconds()
            if age > max_age_seconds:
                result.append(f"{m['mart']} ({_age(age)} ago)")
    return result


@click.command("status")
@dsn_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
@click.option("--max-age", default=None, metavar="DURATION",
              help="Exit 1, naming them, if any mart's last successful refresh is older than "
                   "this (e.g. 2h, 90min) or never happened: for monitoring.")
@friendly_errors
def status_command(dsn, as_json, max_age):
    """Each mart: populated, rows, size, last refresh, last checks and staleness."""
    if max_age is not None and not durations.PATTERN.match(max_age):
        raise UserError(f"--max-age {max_age!r} is not a duration; use e.g. 30min, 2h, 1d")
    dsn = resolve_dsn(dsn)
    conn = connect(dsn)
    try:
        status = collect(conn)
        missing = missing_marts.find(conn)
        leftover = sessions.find(conn)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps({"target": describe(dsn), **status, "leftover_sessions":
                               [s.as_json() for s in leftover]}, indent=2, default=_jsonable))
    else:
        click.echo("\n".join([render(status, describe(dsn)), *sessions.report_lines(leftover)]))
    missing_marts.require_none(missing)  # after the table: the others' status still shows
    if max_age is not None:
        late = overdue(status, durations.seconds(max_age))
        if late:
            click.echo(f"Error: last successful refresh older than {max_age.strip()}: "
                       f"{', '.join(late)}", err=True)
            sys.exit(1)
