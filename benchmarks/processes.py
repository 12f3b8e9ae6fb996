"""Run a command the way a user does (a subprocess: the real console script, or dbt) and
measure it: wall time, exit code and the peak resident memory of that process alone.

Peak memory is the kernel's high-water mark of the program's own address space (VmHWM in
/proc/<pid>/status), read every 20 ms while it runs; it only grows, so the last reading is
the peak. rusage's ru_maxrss is not used: a child's maxrss also carries the parent's
high-water mark from before exec, so it would report the benchmark's memory, not the CLI's."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import cpu


@dataclass
class Finished:
    command: list[str]
    exit_code: int
    seconds: float
    peak_rss_mb: float
    output_tail: str
    cpu_seconds: float = 0.0         # the client process (and its threads and children)
    server_cpu_seconds: float | None = None  # the database server, meanwhile (cpu.py)


def run(command: list[str], env: dict, cwd: Path, log_file: Path, timeout: float,
        postmaster: int | None = None) -> Finished:
    server_before = cpu.server_seconds(postmaster) if postmaster else None
    t0 = time.monotonic()
    with open(log_file, "w") as out:
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        deadline = t0 + timeout
        peak_kb = 0
        while True:
            peak_kb = max(peak_kb, _high_water_kb(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
    seconds = time.monotonic() - t0
    server = None if postmaster is None else round(cpu.server_seconds(postmaster) - server_before, 2)
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
    return Finished(command, proc.returncode, round(seconds, 3), round(peak_kb / 1024, 1), tail,
                    round(usage.ru_utime + usage.ru_stime, 2), server)


def _high_water_kb(pid: int) -> int:
    """VmHWM of a running process in KiB (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def user_env(server, dbname: str) -> dict:
    """The environment a user would have: the BIOLOUPE_DB_* variables that both
    bioloupe-views and the seed's dbt profile read, and nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOLOUPE_")}
    env.update({
        "BIOLOUPE_DB_HOST": server.host, "BIOLOUPE_DB_PORT": str(server.port),
        "BIOLOUPE_DB_USER": "postgres", "BIOLOUPE_DB_PASSWORD": "", "BIOLOUPE_DB_NAME": dbname,
        "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    })
    return env
