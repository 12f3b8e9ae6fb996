"""A throwaway PostgreSQL server for the demo, the tests and the benchmark.

It is started from the binaries on the machine (Debian's /usr/lib/postgresql/15/bin), or from
the directory named by $BIOLOUPE_PG_BIN (e.g. one of the PyPI server wheels that
`scripts/dev.sh setup` installs for PostgreSQL 16, 17 and 18), in a fresh data directory, on a
free loopback port. PostgreSQL refuses to run as root, so when we
are root every server command runs as the `postgres` system user, which owns the data
directory. The superuser `postgres` connects without a password over loopback (the server is
throwaway and listens on 127.0.0.1 only); every other role must use its password, so wrong
passwords can be tested for real.

A server that outlives the command (`demo --keep`) is started with `tcp=False` instead: no TCP
listener at all, only the Unix socket inside its data directory, which initdb makes mode 0700
and owned by the server user, so only that user and root can connect.

With `cron=True`, pg_cron is preloaded and runs jobs in `cron_database`: the tests' server
keeps a database of its own for it; the demo names its one database, so that
`bioloupe-views cron install` works there as printed.
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


BIN_VARS = ("BIOLOUPE_PG_BIN", "BIOLOUPE_PG_BINDIR")  # the second is the older name


def find_bindir() -> Path:
    """$BIOLOUPE_PG_BIN (or its older name $BIOLOUPE_PG_BINDIR), else the newest Debian
    PostgreSQL bin directory on the machine."""
    for var in BIN_VARS:
        explicit = os.environ.get(var, "").strip()
        if explicit:
            if not (Path(explicit) / "pg_ctl").exists():
                raise ConfigError(f"{var}={explicit} holds no pg_ctl: point it at a PostgreSQL bin "
                                  "directory (with initdb, pg_ctl and postgres)")
            return Path(explicit)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for candidate in reversed(candidates):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise ConfigError(
        "no PostgreSQL server binaries found: install them with `apt-get install postgresql-15` "
        "or set BIOLOUPE_PG_BIN to a PostgreSQL bin directory"
    )


def _pkglibdirs(bindir: Path) -> list[Path]:
    """Where this installation keeps its loadable modules: lib/ for Debian and most wheels,
    lib/postgresql/ for a plain `make install` layout (the pgserver wheel)."""
    return [bindir.parent / "lib", bindir.parent / "lib" / "postgresql"]


def pg_cron_available(bindir: Path | None = None) -> bool:
    """Whether pg_cron is installed for the server in this bin directory (Debian's
    postgresql-NN-cron for Debian's servers; none of the PyPI server wheels ships it)."""
    bindir = bindir or find_bindir()
    return any((lib / "pg_cron.so").exists() for lib in _pkglibdirs(bindir))


def server_version(bindir: Path | None = None) -> str:
    """The version of the server binaries in this bin directory, e.g. "17.10" (from
    "postgres (PostgreSQL) 17.10", or "... 15.18 (Debian 15.18-0+deb12u1)" for Debian's)."""
    bindir = bindir or find_bindir()
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[2]


def server_major(bindir: Path | None = None) -> int:
    return int(server_version(bindir).split(".")[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--", *cmd]
    return cmd


def _unreachable_hint(bindir: Path) -> str:
    """When root runs the server as `postgres`, that user must be able to read the binaries
    and traverse every directory above them (a venv under /root is not reachable)."""
    if os.geteuid() != 0:
        return ""
    probe = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-x", str(bindir / "postgres")],
                           capture_output=True)
    if probe.returncode == 0:
        return ""
    return (f" (the {SERVER_USER} system user cannot execute {bindir / 'postgres'}: every directory "
            f"above it must be readable and searchable by that user; `scripts/dev.sh setup` installs "
            f"the server wheels where it can)")


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
    cron_database: str = CRON_DATABASE
    settings: dict[str, str] = field(default_factory=dict)
    bindir: Path = field(default_factory=find_bindir)
    tcp: bool = True

    @property
    def host(self) -> str:
        return "127.0.0.1" if self.tcp else str(self.datadir)

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        if not self.tcp:
            return f"postgresql://{user}@/{dbname}?host={self.datadir}&port={self.port}"
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            _as_server_user([str(self.bindir / args[0]), *args[1:]]),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip() or result.stdout.strip()}"
                               f"{_unreachable_hint(self.bindir)}")

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
            "listen_addresses": "'127.0.0.1'" if self.tcp else "''",
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
            settings["cron.database_name"] = f"'{self.cron_database}'"
            settings["cron.use_background_workers"] = "on"
            settings["max_worker_processes"] = "20"
        settings.update(self.settings)
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n# bioloupe-views throwaway server\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")
        hba = self.datadir / "pg_hba.conf"
        if self.tcp:
            hba.write_text(
                "local all all trust\n"
                f"host all {SERVER_USER} 127.0.0.1/32 trust\n"
                f"host replication {SERVER_USER} 127.0.0.1/32 trust\n"
                "host all all 127.0.0.1/32 scram-sha-256\n"
            )
        else:  # the socket's directory (the data directory, 0700) is the access control
            hba.write_text("local all all trust\n")

    def start_standby(self, settings: dict[str, str] | None = None) -> "ThrowawayServer":
        """A hot standby of this (running, TCP) server: `pg_basebackup -R` into a data
        directory of its own, then started with hot_standby on, streaming from this one."""
        standby = ThrowawayServer(port=free_port(), bindir=self.bindir,
                                  settings={"hot_standby": "on", **(settings or {})})
        parent = Path(tempfile.mkdtemp(prefix="bioloupe-pg-standby-"))
        _chown_to_server_user(parent)
        standby.datadir = parent / "data"
        self._run("pg_basebackup", "-D", str(standby.datadir), "-R", "-X", "stream",
                  "-h", self.host, "-p", str(self.port), "-U", SERVER_USER, "-c", "fast")
        standby._write_config()  # appended last: its port and settings win over the copy's
        standby.restart()
        return standby

    def crash(self) -> None:
        """Stop at once, as a power cut or an OOM kill would: `pg_ctl stop -m immediate`.
        The next start replays the WAL (crash recovery)."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        """Start the stopped server again on the same data directory and port."""
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.datadir / "server.log"),
                  "-w", "-t", "60", "start")
    def create_database(self, name: str) -> str:
        """Create database `name` on the started server; returns its DSN."""
        import psycopg2
        from psycopg2 import sql

        admin = psycopg2.connect(self.dsn())
        try:
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            admin.close()
        return self.dsn(name)

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

