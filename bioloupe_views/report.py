"""What the user sees: dbt-style progress lines, summaries, and run results as JSON."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import datetime
from pathlib import Path

import click

from . import __version__
from .engine import MartResult, Options, Reporter, RunResult

WIDTH = 64
SAMPLE_ROWS = 5
_STATUS_WORD = {"success": "OK", "error": "ERROR", "check_failed": "FAIL", "skipped": "SKIP",
                "unchanged": "SKIP"}
_STATUS_COLOUR = {"success": "green", "error": "red", "check_failed": "red", "skipped": "yellow",
                  "unchanged": "yellow"}


def _line(text: str) -> None:
    click.echo(f"{datetime.now():%H:%M:%S}  {text}")


def _dots(left: str, right: str) -> str:
    return f"{left} {'.' * max(3, WIDTH - len(left))} {right}"


def check_line(check: dict) -> str:
    status = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR"}[check["status"]]
    if check["status"] == "error":
        detail = f"[ERROR: {check.get('error')}]"
    elif check["status"] == "pass" and (check.get("note") or "").startswith("implied"):
        detail = f"[PASS: {check['note']}]"
    elif check["status"] == "pass":
        detail = "[PASS]"
    else:
        detail = f"[{status} {check['failures']}]"
    return _dots(f"{status} {check['name']}", detail)


def print_check_details(check: dict, indent: str = "    ") -> None:
    for row in (check.get("sample") or [])[:SAMPLE_ROWS]:
        click.echo(f"{indent}  {json.dumps(row, default=str)}")


def print_check_results(results: list[dict]) -> None:
    """`bioloupe-views check`: one line per check, samples of failures, dbt's summary."""
    for result in results:
        colour = {"pass": "green", "warn": "yellow"}.get(result["status"], "red")
        click.echo(click.style(check_line(result), fg=colour))
        if result["status"] in ("fail", "warn"):
            print_check_details(result)
    counts = {s: sum(r["status"] == s for r in results) for s in ("pass", "warn", "fail", "error")}
    click.echo(f"\nDone. PASS={counts['pass']} WARN={counts['warn']} FAIL={counts['fail']} "
               f"ERROR={counts['error']} TOTAL={len(results)}")


class ConsoleReporter(Reporter):
    """Prints a line as each mart starts and finishes, like `dbt build`."""

    def __init__(self, target: str):
        self.target = target
        self.lock = threading.Lock()

    def begin(self, marts: list[str], options: Options) -> None:
        mode = "plain" if not options.concurrently else "concurrently"
        how = "atomic, one transaction" if options.atomic else f"threads={options.threads}"
        checks = "with checks" if options.checks else "without checks"
        checks += ", changed only" if options.changed_only else ""
        _line(f"Running with bioloupe-views {__version__} on {self.target}")
        _line(f"Refreshing {len(marts)} mart{'s' if len(marts) != 1 else ''} {mode} ({how}, {checks})")
        click.echo("")

    def start(self, index: int, total: int, mart: str) -> None:
        with self.lock:
            _line(_dots(f"{index} of {total} START refresh {mart}", "[RUN]"))

    def finish(self, index: int, total: int, result: MartResult) -> None:
        word = _STATUS_WORD[result.status]
        name = result.mart + (" (unpopulated: plain refresh)" if result.fallback else "")
        if result.status == "success":
            detail = f"[{result.rows} rows in {result.seconds:.2f}s]"
        elif result.status == "check_failed":
            failed = [c for c in result.checks if c["severity"] == "error" and c["status"] != "pass"]
            detail = f"[{len(failed)} check{'s' if len(failed) != 1 else ''} failed, rolled back in {result.seconds:.2f}s]"
        elif result.status == "error":
            detail = f"[ERROR in {result.seconds:.2f}s]"
        elif result.status == "unchanged":
            detail = f"[unchanged since {result.unchanged_since}]"
        else:
            detail = "[SKIP]"
        with self.lock:
            _line(click.style(_dots(f"{index} of {total} {word} {name}", detail),
                              fg=_STATUS_COLOUR[result.status]))
            if result.error and result.status != "skipped":
                _line(f"    {result.error}")
            elif result.status == "skipped":
                _line(f"    {result.error}")
            elif result.reason and result.status != "unchanged":
                _line(f"    refreshed: {result.reason}")
            if result.note:
                _line(f"    {result.note}")
            for check in result.checks:
                if check["status"] != "pass":
                    _line("    " + check_line(check))
                    print_check_details(check, indent="              ")


    def upkeep(self, action) -> None:
        _line(f"Upkeep: {action.describe()}")

    def note(self, text: str) -> None:
        with self.lock:
            _line(f"Note: {text}")


def summarize(outcome: RunResult) -> None:
    counts = {s: sum(r.status == s for r in outcome.results) for s in _STATUS_WORD}
    unchanged = f" UNCHANGED={counts['unchanged']}" if counts["unchanged"] else ""
    warns = sum(c["status"] == "warn" for r in outcome.results for c in r.checks)
    click.echo("")
    _line(f"Finished refreshing {len(outcome.results)} marts in {outcome.seconds:.2f}s (run {outcome.run_id}).")
    if outcome.ok:
        _line(click.style("Completed successfully", fg="green"))
    else:
        bad = [r for r in outcome.results if r.status in ("error", "check_failed")]
        _line(click.style(f"Completed with {len(bad)} failure{'s' if len(bad) != 1 else ''}:", fg="red"))
        for r in bad:
            reason = r.error or "error-severity checks failed; last good data kept"
            reason += f" ({r.note})" if r.note else ""
            _line(f"  {_STATUS_WORD[r.status]} {r.mart}: {reason}")
    _line(f"Done. PASS={counts['success']} WARN={warns} ERROR={counts['error']} "
          f"FAIL={counts['check_failed']} SKIP={counts['skipped']}{unchanged} "
          f"TOTAL={len(outcome.results)}")


def write_json(path: str, payload: dict) -> None:
    Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n")


def run_results(outcome: RunResult, options: Options, target: str) -> dict:
    return {
        "metadata": {"generator": f"bioloupe-views {__version__}", "generated_at":
                     datetime.now().astimezone().isoformat(), "target": target},
        "run_id": outcome.run_id,
        "success": outcome.ok,
        "elapsed_seconds": round(outcome.seconds, 3),
        "args": {"concurrently": options.concurrently, "checks": options.checks,
                 "threads": options.threads, "atomic": options.atomic,
                 "changed_only": options.changed_only, "vacuum": options.vacuum,
                 "compact_up_to": options.compact_up_to},
        "results": [r.as_json() for r in outcome.results],
        "index_rebuilds": [dataclasses.asdict(r) for r in outcome.rebuilds],
        "heap_rewrites": [dataclasses.asdict(r) for r in outcome.rewrites],
    }
