"""Where the database is: one resolution shared by Alembic (env.py) and the CLI.

Precedence, highest first:
1. an explicit DSN (`--dsn` on the CLI, `alembic -x dsn=...`);
2. BIOLOUPE_DATABASE_URL, a libpq URL or key=value string;
3. the dbt profile's variables BIOLOUPE_DB_HOST, _PORT (default 5432), _USER, _PASSWORD, _NAME;
4. when none of those is set, libpq's own environment (PGHOST, PGPORT, PGUSER, PGDATABASE,
   PGSERVICE, ...): the DSN is then empty and libpq reads PGPASSWORD, PGPASSFILE or ~/.pgpass.

A password given on the command line is visible to other users in `ps` and stays in the shell
history, so resolve_dsn warns (without the password) when it finds one there.

Passwords never leave this module unmasked except inside the DSN handed to libpq.
"""

from __future__ import annotations

import os
import re
import sys
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
# Where refresh-views and check write their run results, as dbt writes target/run_results.json:
# --json PATH, else this variable, else the default (relative to the current directory).
RUN_RESULTS_VAR = "BIOLOUPE_RUN_RESULTS"
DEFAULT_RUN_RESULTS = "target/run_results.json"
# Any of these says "libpq knows where to connect"; PGPASSWORD/PGPASSFILE alone do not.
LIBPQ_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE")
ARGV_WARNING = ("Warning: a password in {where} is visible to other users in ps and shell "
                "history; use PGPASSFILE/~/.pgpass, PGPASSWORD or BIOLOUPE_DB_PASSWORD")


def resolve_dsn(explicit: str | None = None, environ: dict | None = None) -> str:
    """Return the libpq DSN to use, or raise ConfigError naming what is missing."""
    env = os.environ if environ is None else environ
    if explicit:
        warn_if_password_in_argv(explicit)
    dsn = explicit or env.get(URL_VAR)
    if dsn:
        return validate_dsn(dsn)
    if not any(env.get(v) for v in PART_VARS.values()) and any(env.get(v) for v in LIBPQ_VARS):
        return ""  # libpq fills in everything from PG* and the password file
    missing = [PART_VARS[p] for p in REQUIRED_PARTS if not env.get(PART_VARS[p])]
    if missing:
        raise ConfigError(
            f"no database configured: set {URL_VAR}, or pass --dsn, or set {', '.join(missing)}"
            ", or libpq's PGHOST/PGDATABASE (password from PGPASSFILE or ~/.pgpass)"
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


def warn_if_password_in_argv(dsn: str, argv: list[str] | None = None) -> bool:
    """Warn on stderr when the DSN's password is on this process's command line (--dsn,
    --bioloupe-dsn, `alembic -x dsn=`); a DSN handed over in code or the environment is fine."""
    argv = sys.argv if argv is None else argv
    password = password_of(dsn)
    if not password:
        return False
    from urllib.parse import unquote

    forms = {f for f in (password, unquote(password), quote(password, safe="")) if f}
    carriers = [arg for arg in argv[1:] if any(form in arg for form in forms)]
    if not carriers:
        return False
    where = "-x dsn" if any(arg.lstrip("-x").startswith("dsn=") for arg in carriers) else "--dsn"
    print(ARGV_WARNING.format(where=where), file=sys.stderr)
    return True


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
        raw = _raw_passwords(dsn)
        return raw[0] if raw else None


# Where a password sits in a DSN, as libpq reads it: a URL's userinfo (up to the first @ or
# /, so a raw one holds neither), a URL's ?password= (up to & or #), or key=value (a quoted
# value with backslash escapes, else up to whitespace); sslpassword (the client key's) too.
# _URL_PASSWORD_TEXT is the first inside a longer message, where a URL also ends at
# whitespace or a quote.
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)([^@/]*)(@)")
_URL_PASSWORD_TEXT = re.compile(r"(://[^:/@\s\"']*:)([^@/\s\"']*)(@)")
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)([^&#\s]*)", re.I)
_KV_PASSWORD = re.compile(r"((?<![?&\w])(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)",
                          re.I)


def _raw_passwords(dsn: str) -> list[str]:
    """The password as written in the DSN (percent-encoded, quoted), even when libpq cannot
    parse the DSN: what its parse errors quote."""
    found = [m.group(2) for m in _URL_PASSWORD.finditer(dsn)]
    found += [m.group(2) for m in _QUERY_PASSWORD.finditer(dsn)]
    for match in _KV_PASSWORD.finditer(dsn):
        value = match.group(2)
        found.append(value)
        if len(value) > 1 and value[0] == value[-1] == "'":
            found.append(re.sub(r"\\(.)", r"\1", value[1:-1]))
    return [f for f in found if f]


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ***, in URL (userinfo or ?password=) or
    key=value form."""
    masked = _URL_PASSWORD.sub(r"\1***\3", dsn)
    masked = _QUERY_PASSWORD.sub(r"\1***", masked)
    return _KV_PASSWORD.sub(r"\1***", masked)


def mask_text(text: str, dsn: str | None) -> str:
    """Hide passwords in a message (an error, a log line), and nothing else.

    A password can reach a message only inside a DSN (one the text repeats, or any URL or
    password=... it holds) or where libpq's DSN parser quotes a value it rejects (`invalid
    percent-encoded token: "..."`): those are masked, and the DSN's password wherever the
    text quotes it whole. It is never replaced inside other words: with the password `n`,
    "permission denied" stays as PostgreSQL wrote it."""
    if dsn and dsn.strip() and dsn in text:
        text = text.replace(dsn, mask_dsn(dsn))
    # The placeholder of the tool's own hints ("postgresql://user:password@host...") stays.
    text = _URL_PASSWORD_TEXT.sub(
        lambda m: m.group(0) if m.group(2) == "password" else f"{m.group(1)}***{m.group(3)}", text)
    text = _QUERY_PASSWORD.sub(r"\1***", text)
    text = _KV_PASSWORD.sub(r"\1***", text)
    for form in _password_forms(dsn or ""):
        for quote_char in ('"', "'"):
            text = text.replace(f"{quote_char}{form}{quote_char}", f"{quote_char}***{quote_char}")
    return text


def _password_forms(dsn: str) -> set[str]:
    """The DSN's password as it may be quoted: as written, decoded, and percent-encoded."""
    from urllib.parse import unquote

    raw = _raw_passwords(dsn)
    try:
        parsed = dsn_parts(dsn).get("password") if dsn.strip() else None
    except Exception:
        parsed = None
    forms = set(raw) | {unquote(r) for r in raw}
    if parsed:
        forms |= {parsed, quote(parsed, safe="")}
    return {f for f in forms if f and f != "***"}


def describe(dsn: str) -> str:
    """user@host:port/dbname, for messages: enough to recognise the target, no secrets."""
    try:
        p = dsn_parts(dsn)
    except Exception:
        return mask_dsn(dsn)
    if not dsn.strip():  # libpq's environment: show what it will use
        env = os.environ
        p = {k: v for k, v in (("host", env.get("PGHOST") or env.get("PGHOSTADDR")),
                               ("port", env.get("PGPORT")), ("user", env.get("PGUSER")),
                               ("dbname", env.get("PGDATABASE"))) if v}
        if env.get("PGSERVICE") and not p:
            return f"service {env['PGSERVICE']}"
    host = p.get("host") or "localhost"
    return f"{p.get('user', '?')}@{host}:{p.get('port', '5432')}/{p.get('dbname', p.get('user', '?'))}"
