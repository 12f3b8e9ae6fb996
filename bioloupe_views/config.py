"""Where the database is: one resolution shared by Alembic (env.py) and the CLI.

Precedence, highest first:
1. an explicit DSN (`--dsn` on the CLI, `alembic -x dsn=...`);
2. BIOLOUPE_DATABASE_URL, a libpq URL or key=value string;
3. the dbt profile's variables BIOLOUPE_DB_HOST, _PORT (default 5432), _USER, _PASSWORD, _NAME.

Passwords never leave this module unmasked except inside the DSN handed to libpq.
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote

from .errors import ConfigError

URL_VAR = "BIOLOUPE_DATABASE_URL"
PART_VARS = {
    "host": "BIOLOUPE_DB_HOST",
    "port": "BIOLOUPE_DB_PORT",
    "user": "BIOLOUPE_DB_USER",
    "password": "BIOLOUPE_DB_PASSWORD",
    "dbname": "BIOLOUPE_DB_NAME",
}
REQUIRED_PARTS = ("host", "user", "dbname")


def resolve_dsn(explicit: str | None = None, environ: dict | None = None) -> str:
    """Return the libpq DSN to use, or raise ConfigError naming what is missing."""
    env = os.environ if environ is None else environ
    dsn = explicit or env.get(URL_VAR)
    if dsn:
        return validate_dsn(dsn)
    missing = [PART_VARS[p] for p in REQUIRED_PARTS if not env.get(PART_VARS[p])]
    if missing:
        raise ConfigError(
            f"no database configured: set {URL_VAR}, or pass --dsn, or set {', '.join(missing)}"
        )
    port = env.get(PART_VARS["port"]) or "5432"
    if not port.isdigit():
        raise ConfigError(f"{PART_VARS['port']} must be a port number, got {port!r}")
    password = env.get(PART_VARS["password"])
    auth = quote(env[PART_VARS["user"]], safe="")
    if password:
        auth += ":" + quote(password, safe="")
    host = env[PART_VARS["host"]]
    return f"postgresql://{auth}@{quote(host, safe='')}:{port}/{quote(env[PART_VARS['dbname']], safe='')}"


def validate_dsn(dsn: str) -> str:
    """Reject a DSN libpq cannot parse, with a message that does not echo the password."""
    from psycopg2.extensions import parse_dsn

    try:
        port = parse_dsn(dsn).get("port")
        if port is not None and not re.fullmatch(r"\d+(,\d+)*", port):
            raise ValueError(f"port {port!r} is not a number")
    except Exception as exc:  # psycopg2.ProgrammingError: invalid dsn
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unparsable"
        raise ConfigError(
            f"malformed DSN {mask_dsn(dsn)!r} ({mask_text(reason, dsn)}): "
            "use postgresql://user:password@host:port/dbname"
        ) from None
    return dsn


def dsn_parts(dsn: str) -> dict:
    from psycopg2.extensions import parse_dsn

    return parse_dsn(dsn)


def password_of(dsn: str) -> str | None:
    try:
        return dsn_parts(dsn).get("password")
    except Exception:
        match = re.search(r"://[^:/@]*:([^@]*)@", dsn)
        return match.group(1) if match else None


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ***, in URL or key=value form."""
    masked = re.sub(r"(://[^:/@]*:)([^@]*)(@)", r"\1***\3", dsn)
    masked = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", masked, flags=re.I)
    return masked


def mask_text(text: str, dsn: str) -> str:
    """Remove the DSN's password from any text (error messages, logs)."""
    password = password_of(dsn)
    if password:
        from urllib.parse import unquote

        for form in {password, unquote(password), quote(password, safe="")}:
            if form:
                text = text.replace(form, "***")
    return text


def describe(dsn: str) -> str:
    """user@host:port/dbname, for messages: enough to recognise the target, no secrets."""
    try:
        p = dsn_parts(dsn)
    except Exception:
        return mask_dsn(dsn)
    host = p.get("host") or "localhost"
    return f"{p.get('user', '?')}@{host}:{p.get('port', '5432')}/{p.get('dbname', p.get('user', '?'))}"
