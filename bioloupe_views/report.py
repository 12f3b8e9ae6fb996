"""What the user sees: dbt-style progress lines and summaries (the JSON: run_results.py)."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import click

from . import __version__
from .engine import MartResult, Options, Reporter, RunResult

WIDTH = 64
SAMPLE_ROWS = 5
# A mart's line says what the summary counts it as (OK lines are dbt's PASS).
_STATUS_WORD = {"success": "OK", "error": "ERROR", "check_failed": "FAIL", "skipped": "SKIP",
                "unchanged": "UNCHANGED", "cancelled": "CANCELLED"}
_SUMMARY_WORD = {"success": "PASS", "error": "ERROR", "check_failed": "FAIL", "skipped": "SKIP",
                 "unchanged": "UNCHANGED"}
_STATUS_COLOUR = {"success": "green", "error": "red", "check_failed": "red", "skipped": "yellow",
                  "unchanged": "cyan", "cancelled": "yellow"}
CHECK_WORDS = ("pass", "warn", "fail", "error")
UNTRACKED = "untracked source"   # the reason --changed-only gives for a mart it cannot judge


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
    """Prints a line as each mart starts and finishes, like `dbt build`; keeps what it saw,
    so a run stopped by a signal still has the results of what finished."""

    def __init__(self, target: str):
        self.target = target
        self.lock = threading.Lock()
        self.marts: list[str] = []
        self.finished: dict[str, MartResult] = {}

    def begin(self, marts: list[str], options: Options) -> None:
        self.marts = list(marts)
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
        self.finished[result.mart] = result
        word = _STATUS_WORD[result.status]
        name = result.mart + (" (unpopulated: plain refresh)" if result.fallback else "")
        if result.status == "success":
            detail = f"[{_rows_detail(result)} in {result.seconds:.2f}s]"
        elif result.status == "check_failed":
            failed = [c for c in result.checks if c["severity"] == "error" and c["status"] != "pass"]
            detail = f"[{len(failed)} check{'s' if len(failed) != 1 else ''} failed, rolled back in {result.seconds:.2f}s]"
        elif result.status == "error":
            detail = f"[ERROR in {result.seconds:.2f}s]"
        elif result.status == "unchanged":
            detail = f"[unchanged since {result.unchanged_since}]"
        else:
            detail = f"[{word}]"
        with self.lock:
            _line(click.style(_dots(f"{index} of {total} {word} {name}", detail),
                              fg=_STATUS_COLOUR[result.status]))
            if result.error and result.status != "skipped":
                _line(f"    {result.error}")
            elif result.status == "skipped":
                _line(f"    {result.error}")
            elif result.reason and result.status != "unchanged":
                _line(f"    refreshed: {result.reason}")
            if result.strategy_reason:
                _line(f"    {result.strategy_reason}")
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


def _rows_detail(result: MartResult) -> str:
    """`1,380,658 rows, 3.1% changed` for a concurrent refresh, `..., swapped` for a swap."""
    rows = f"{result.rows:,} rows" if result.rows is not None else "? rows"
    if result.mode == "swap":
        return f"{rows}, swapped"
    share = result.changed_share
    return rows if share is None else f"{rows}, {100 * share:.1f}% changed,"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def mart_counts(results: list[MartResult]) -> dict[str, int]:
    """Marts by the word their line says, as the summary and the run results count them."""
    return {word: sum(r.status == status for r in results)
            for status, word in _SUMMARY_WORD.items()}


def check_counts(results: list[MartResult]) -> dict[str, int]:
    """The checks run with the marts, apart from them: one mart has many checks."""
    checks = [c for r in results for c in r.checks]
    return {w.upper(): sum(c["status"] == w for c in checks) for w in CHECK_WORDS}


def finished_line(results: list[MartResult]) -> str:
    """What was refreshed, of what was selected: never a refresh that did not happen."""
    refreshed = sum(r.status == "success" for r in results)
    line = f"Finished: {refreshed} of {_plural(len(results), 'mart')} refreshed"
    others = (("unchanged", ("unchanged",)), ("failed", ("error", "check_failed")),
              ("skipped", ("skipped",)), ("cancelled", ("cancelled",)))
    for word, statuses in others:
        n = sum(r.status in statuses for r in results)
        if n:
            line += f", {n} {word}"
    return line


def summary_lines(results: list[MartResult]) -> list[str]:
    marts, checks = mart_counts(results), check_counts(results)
    return [" ".join(["Done.", *(f"{w}={n}" for w, n in marts.items()),
                      f"TOTAL={_plural(len(results), 'mart')}"]),
            " ".join(["Checks:", *(f"{w}={n}" for w, n in checks.items()),
                      f"TOTAL={sum(checks.values())}"])]


def untracked_note(results: list[MartResult], nothing_tracked: bool = False) -> str | None:
    """--changed-only refreshes in full a mart that reads a source nobody tracks: say how to
    track them, or --changed-only never saves anything."""
    if nothing_tracked:
        return ("Note: no source is tracked, so --changed-only refreshes every mart; run "
                "`bioloupe-views track-sources --apply` to track them.")
    untracked = [r for r in results if (r.reason or "").startswith(UNTRACKED)]
    if not untracked:
        return None
    return (f"Note: --changed-only refreshed {_plural(len(untracked), 'mart')} in full because "
            "they read untracked sources; run `bioloupe-views track-sources --apply` to track "
            "them, so that marts whose sources did not change are left unchanged.")


def summarize(outcome: RunResult, nothing_tracked: bool = False) -> None:
    click.echo("")
    _line(f"{finished_line(outcome.results)} in {outcome.seconds:.2f}s (run {outcome.run_id}).")
    if outcome.ok:
        _line(click.style("Completed successfully", fg="green"))
    else:
        bad = [r for r in outcome.results if r.status in ("error", "check_failed")]
        _line(click.style(f"Completed with {len(bad)} failure{'s' if len(bad) != 1 else ''}:", fg="red"))
        for r in bad:
            reason = r.error or "error-severity checks failed; last good data kept"
            reason += f" ({r.note})" if r.note else ""
            _line(f"  {_STATUS_WORD[r.status]} {r.mart}: {reason}")
    note = untracked_note(outcome.results, nothing_tracked)
    if note:
        _line(note)
    for line in summary_lines(outcome.results):
        _line(line)
