"""A throwaway PostgreSQL server for the demo, the tests and the benchmark.

It is started from the binaries on the machine (Debian's /usr/lib/postgresql/15/bin), in a
fresh data directory, on a free loopback port. PostgreSQL refuses to run as root, so when we
are root every server command runs as the `postgres` system user, which owns the data
directory. The superuser `postgres` connects without a password over loopback (the server is
throwaway and listens on 127.0.0.1 only); every other role must use its password, so wrong
passwords can be tested for real.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

SERVER_USER = "postgres"
CRON_DATABASE = "bioloupe_cron"


def find_bindir() -> Path:
    """The newest PostgreSQL bin directory on the machine (or $BIOLOUPE_PG_BINDIR)."""
    explicit = os.environ.get("BIOLOUPE_PG_BINDIR")
    candidates = [explicit] if explicit else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for candidate in reversed(candidates):
        if candidate and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise ConfigError(
        "no PostgreSQL server binaries found: install them with `apt-get install postgresql-15` "
        "or set BIOLOUPE_PG_BINDIR"
    )


def pg_cron_available(bindir: Path | None = None) -> bool:
    """Whether Debian's postgresql-NN-cron is installed for this server version."""
    bindir = bindir or find_bindir()
    return (bindir.parent / "lib" / "pg_cron.so").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--", *cmd]
    return cmd


def _chown_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam(SERVER_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


@dataclass
class ThrowawayServer:
    """One PostgreSQL server in its own data directory; `start()` it, `stop()` it."""

    datadir: Path | None = None
    port: int | None = None
    cron: bool = False
    settings: dict[str, str] = field(default_factory=dict)
    bindir: Path = field(default_factory=find_bindir)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            _as_server_user([str(self.bindir / args[0]), *args[1:]]),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> "ThrowawayServer":
        if self.datadir is None:
            parent = Path(tempfile.mkdtemp(prefix="bioloupe-pg-"))
            _chown_to_server_user(parent)
            self.datadir = parent / "data"
        self.datadir = Path(self.datadir)
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        _chown_to_server_user(self.datadir.parent)
        self.port = self.port or free_port()
        self._run("initdb", "-D", str(self.datadir), "-U", SERVER_USER, "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
        self._write_config()
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.datadir / "server.log"),
                  "-w", "-t", "60", "start")
        return self

    def _write_config(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.datadir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "'256MB'",
            "work_mem": "'64MB'",
            "maintenance_work_mem": "'256MB'",
            "max_wal_size": "'4GB'",
        }
        if self.cron:
            settings["shared_preload_libraries"] = "'pg_cron'"
            settings["cron.database_name"] = f"'{CRON_DATABASE}'"
            settings["cron.use_background_workers"] = "on"
            settings["max_worker_processes"] = "20"
        settings.update(self.settings)
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n# bioloupe-views throwaway server\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            f"host all {SERVER_USER} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )

    def stop(self, remove: bool = True) -> None:
        if self.datadir is None or not (self.datadir / "PG_VERSION").exists():
            return
        subprocess.run(
            _as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast",
                             "-w", "stop"]),
            capture_output=True,
        )
        if remove:
            shutil.rmtree(self.datadir.parent, ignore_errors=True)

    def __enter__(self) -> "ThrowawayServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

