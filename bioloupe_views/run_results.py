"""Run results, as dbt writes target/run_results.json: one documented schema
(docs/run-results.md, versioned by metadata.schema_version), written by refresh-views and
check on every way a run ends, so the file never describes an earlier run.

The file is replaced atomically (a temporary file in the same directory, then os.replace): a
reader (a monitor, a CI step) sees the previous results or the new ones, never half a file.
An explicit path (--json PATH, BIOLOUPE_RUN_RESULTS) that cannot be written is refused before
anything runs; the default one only warns, so that a job started where the current directory
is read-only still refreshes its marts."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import stat
import tempfile
from datetime import datetime
from pathlib import Path

import click

from . import __version__, report
from .config import DEFAULT_RUN_RESULTS, RUN_RESULTS_VAR
from .engine import MartResult, Options, RunResult

SCHEMA_VERSION = 1
STDOUT = "-"


@dataclasses.dataclass(frozen=True)
class Destination:
    """Where this invocation's results go: a path, or stdout for `-`."""

    path: str
    explicit: bool = True

    @property
    def stdout(self) -> bool:
        return self.path == STDOUT


def resolve(value: str | None) -> Destination | None:
    """The destination for --json's value (or BIOLOUPE_RUN_RESULTS'), tried now; None when
    the default one cannot be written (after a warning on stderr). Raises OSError for an
    explicit path that cannot be written."""
    if value == STDOUT:
        return Destination(STDOUT)
    if value:
        _try(Path(value), create_parent=False)
        return Destination(value)
    try:
        _try(Path(DEFAULT_RUN_RESULTS), create_parent=True)
    except OSError as exc:
        click.echo(f"Warning: run results not written: cannot write {DEFAULT_RUN_RESULTS} "
                   f"({reason(exc)}); pass --json PATH or set {RUN_RESULTS_VAR}", err=True)
        return None
    return Destination(DEFAULT_RUN_RESULTS, explicit=False)


def reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _special(path: Path) -> bool:
    """A device or a pipe (/dev/stdout, a FIFO): written in place, it cannot be replaced."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _try(path: Path, create_parent: bool) -> None:
    """Fail now, as the write would fail later: a directory, a missing or read-only parent."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory")
    if _special(path):
        with open(path, "a"):
            return
    parent = path.parent
    if create_parent:
        parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.", suffix=".tmp"):
        pass


def write(destination: Destination | None, payload: dict) -> None:
    if destination is None:
        return
    text = json.dumps(payload, indent=2, default=str) + "\n"
    if destination.stdout:   # called outside human_output_for: stdout is stdout again
        click.echo(text, nl=False)
        return
    path = Path(destination.path)
    if _special(path):
        with open(path, "w") as out:
            out.write(text)
        return
    if not destination.explicit:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, _mode(path))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _mode(path: Path) -> int:
    """The replaced file's permissions, or a new file's (0666 less the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# --- the schema ----------------------------------------------------------------------------

def metadata(command: str, target: str, invocation_id: str) -> dict:
    return {"schema_version": SCHEMA_VERSION, "generator": f"bioloupe-views {__version__}",
            "command": command, "invocation_id": invocation_id,
            "generated_at": datetime.now().astimezone().isoformat(), "target": target}


def args(options: Options) -> dict:
    return {"concurrently": options.concurrently, "checks": options.checks,
            "threads": options.threads, "atomic": options.atomic,
            "changed_only": options.changed_only, "vacuum": options.vacuum,
            "compact_up_to": options.compact_up_to, "lock_timeout": options.lock_timeout,
            "statement_timeout": options.statement_timeout, "wait_seconds": options.wait,
            "log_retention": options.retention, "strategy": options.strategy}


def refresh_results(meta: dict, status: str, message: str | None, run_id: str | None,
                    elapsed: float, options: Options | None, results: list[MartResult],
                    outcome: RunResult | None = None, lock_holder: dict | None = None) -> dict:
    """The run results of refresh-views, however the run ended (status: success, error,
    skipped when the refresh lock was held, cancelled by a signal)."""
    return {
        "metadata": meta,
        "status": status,
        "success": status == "success",
        "message": message,
        "run_id": run_id,
        "elapsed_seconds": round(elapsed, 3),
        "args": args(options) if options else None,
        "counts": {"marts": {**report.mart_counts(results), "TOTAL": len(results)},
                   "checks": _with_total(report.check_counts(results))},
        "lock_holder": lock_holder,
        "results": [r.as_json() for r in results],
        "index_rebuilds": [dataclasses.asdict(r) for r in outcome.rebuilds] if outcome else [],
        "heap_rewrites": [dataclasses.asdict(r) for r in outcome.rewrites] if outcome else [],
    }


def check_results(meta: dict, status: str, message: str | None, elapsed: float,
                  results: list[dict]) -> dict:
    """The run results of `bioloupe-views check` (status: success, error)."""
    counts = {w.upper(): sum(r["status"] == w for r in results) for w in report.CHECK_WORDS}
    return {"metadata": meta, "status": status, "success": status == "success",
            "message": message, "elapsed_seconds": round(elapsed, 3),
            "counts": {"checks": _with_total(counts)}, "results": results}


def _with_total(counts: dict) -> dict:
    return {**counts, "TOTAL": sum(counts.values())}
