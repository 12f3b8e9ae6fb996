"""A refresh that hits a server resource limit, explained in one line.

REFRESH builds the mart's new rows before it publishes them: the sorts and hashes of its
query and, with CONCURRENTLY, of the diff against the old rows spill to temporary files
once they outgrow work_mem, and a plain refresh writes a whole new copy. A role or database
with a low `temp_file_limit`, or a full disk, fails that refresh alone (its transaction rolls
back, readers keep the last good data, the run log records the error and its SQLSTATE).
PostgreSQL's message names the limit but not what to do, so the engine's report adds it.
"""

from __future__ import annotations

CONFIGURATION_LIMIT_EXCEEDED = "53400"
DISK_FULL = "53100"
OUT_OF_MEMORY = "53200"

_KEPT = "the mart keeps its last good data"


def explain(message: str, sqlstate: str | None) -> str:
    """The error, with what to do when it is a resource limit; otherwise unchanged."""
    if sqlstate == CONFIGURATION_LIMIT_EXCEEDED and "temp_file_limit" in message:
        return (f"{message}: the refresh needs more temporary space than this role or database "
                "allows; raise temp_file_limit (ALTER ROLE or ALTER DATABASE ... SET "
                f"temp_file_limit), or work_mem so that less spills to disk; {_KEPT}")
    if sqlstate == DISK_FULL:
        return (f"{message}: the server's disk is full; a refresh needs room for the mart's new "
                f"rows and its temporary files: free space, then run again; {_KEPT}")
    if sqlstate == OUT_OF_MEMORY:
        return (f"{message}: the server ran out of memory for this refresh; lower work_mem or "
                f"--threads, or add memory; {_KEPT}")
    return message
