"""CPU seconds a command costs the database server, beside the client's own.

Wall time on a shared 2-core machine says little about what a refresh costs the server its
readers share. The server's CPU is read from /proc: the postmaster's children that are
alive (their utime + stime) plus what the postmaster has reaped (cutime + cstime: every
backend that ended). The difference between two readings is the CPU the server spent in
between, whichever backend spent it, including the ones that came and went.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def postmaster_pid(datadir: Path) -> int:
    return int((Path(datadir) / "postmaster.pid").read_text().split()[0])


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on


def server_seconds(postmaster: int) -> float:
    """CPU seconds the server has used so far (live children + reaped ones + itself)."""
    own = _stat(postmaster)
    if own is None:
        return 0.0
    # own[11:15] are utime, stime, cutime, cstime (fields 14 to 17)
    ticks = sum(int(v) for v in own[11:15])
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields and int(fields[1]) == postmaster:  # fields[1] is the parent pid
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICKS
