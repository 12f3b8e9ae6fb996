"""No role can make another run its SQL. Each attack is tried for real on a throwaway server:
the refresher role cannot change what checks run; an operator planted in `public` is never
called by a refresh (while the 0001 engine, the control, calls it); a role that can only
connect cannot take the refresh lock or touch runs through the engine; a downgrade stops at
an object it did not create and removes the pg_cron job it installed."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import psycopg2
import pytest
from click.testing import CliRunner
from psycopg2 import sql as pgsql

from bioloupe_views import cli as bioloupe_cli
from bioloupe_views import contract, migrate
from tests.conftest import MARTS
from tests.test_changing_marts import project  # noqa: F401  (a temporary copy of the SQL and migrations)
from tests.test_roles import (Admin, admin, alembic, as_role, connect_as, new_role,  # noqa: F401
                              roles_quoted)

DOWNGRADE = ("downgrade", "base")


def _dbname(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1]


def _denied(conn, statement, params=None) -> str:
    with pytest.raises(psycopg2.errors.InsufficientPrivilege) as info:
        conn.cursor().execute(statement, params)
    return str(info.value).splitlines()[0]


def test_the_refresher_refreshes_but_cannot_change_what_any_check_runs(
        sources_dsn, admin, cli, server):
    refresher = new_role(admin, "refresher")
    result = alembic(cli, sources_dsn, f"refresher_role={refresher}")
    assert result.returncode == 0, result.stderr
    dsn = as_role(server, _dbname(sources_dsn), refresher)

    # It can do its job, through the same engine as everyone.
    for command in (("refresh",), ("check",), ("status",)):
        outcome = cli(*command, dsn=dsn)
        assert outcome.returncode == 0, (command, outcome.stdout, outcome.stderr)
    conn = connect_as(server, _dbname(sources_dsn), refresher)
    try:
        conn.cursor().execute("CALL bioloupe_views.refresh_all(ARRAY['mv_drug_trials'])")
        # ...and nothing more: the checks, their registry and the routines are the owner's.
        check = admin("SELECT relation FROM bioloupe_views.mart_check ORDER BY position LIMIT 1")[0][0]
        assert "permission denied for table mart_check" in _denied(
            conn, "UPDATE bioloupe_views.mart_check SET severity = 'warn'")
        assert "permission denied for schema bioloupe_views_checks" in _denied(
            conn, f"CREATE OR REPLACE VIEW bioloupe_views_checks.{check} AS"
                  " SELECT current_user AS who, pg_read_file('/etc/hostname') AS secret")
        assert "permission denied for schema bioloupe_views" in _denied(
            conn, "CREATE FUNCTION bioloupe_views.run_checks(p_mart text, x int) RETURNS int"
                  " LANGUAGE sql AS 'SELECT 1'")
        assert "must be owner of function bioloupe_views.refresh_mart" in _denied(
            conn, "ALTER FUNCTION bioloupe_views.refresh_mart(uuid, text) SECURITY DEFINER")
        assert "must be owner of materialized view mv_drug_trials" in _denied(
            conn, "ALTER MATERIALIZED VIEW public.mv_drug_trials RENAME TO x")
    finally:
        conn.close()
    # A lock holder the refresher may not see the details of (a superuser's session, no
    # running run): still one line naming it, never a traceback.
    holder = psycopg2.connect(sources_dsn)
    try:
        holder.cursor().execute("SELECT pg_advisory_lock(1651470447, 1)")
        busy = cli("refresh", dsn=dsn)
        assert busy.returncode == 1 and "Traceback" not in busy.stderr
        assert busy.stderr.count("\n") == 1
        assert f"another refresh holds the lock: pid {holder.get_backend_pid()}" in busy.stderr
    finally:
        holder.close()
    # The superuser's next runs execute the owner's checks, as they were migrated.
    admin("CALL bioloupe_views.refresh_all()")
    assert cli("diff", dsn=sources_dsn).returncode == 0


def test_an_operator_planted_in_public_is_never_called_by_a_refresh(sources_dsn, admin, cli, server):
    planter = new_role(admin, "planter")
    admin(f"GRANT CREATE ON SCHEMA public TO {roles_quoted(admin, planter)}")
    admin("CREATE TABLE public.hijacked (who text)")
    admin("GRANT INSERT ON public.hijacked TO PUBLIC")

    def plant(conn):
        conn.cursor().execute(
            "CREATE FUNCTION public.hostile_concat(bigint, text) RETURNS text LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO public.hijacked VALUES (current_user); RETURN $1::text || $2;"
            " END $$")
        conn.cursor().execute("CREATE OPERATOR public.|| (LEFTARG = bigint, RIGHTARG = text,"
                              " FUNCTION = public.hostile_concat)")

    def calls():
        return admin("SELECT count(*) FROM public.hijacked")[0][0]

    # The control: the 0001 engine runs stored check text as the caller, operators looked up
    # at run time, so the planted operator runs as the superuser.
    migrate.upgrade(sources_dsn, "0001")
    conn = connect_as(server, _dbname(sources_dsn), planter)
    try:
        plant(conn)
        admin("CALL bioloupe_views.refresh_all()")
        assert calls() > 0
        admin("DELETE FROM public.hijacked")
        conn.cursor().execute("DROP OPERATOR public.|| (bigint, text)")
        conn.cursor().execute("DROP FUNCTION public.hostile_concat(bigint, text)")

        # Head: checks are views bound when the migration created them.
        migrate.upgrade(sources_dsn)
        plant(conn)
    finally:
        conn.close()
    admin("CALL bioloupe_views.refresh_all()")
    assert cli("refresh", dsn=sources_dsn).returncode == 0
    assert cli("check", dsn=sources_dsn).returncode == 0
    assert calls() == 0


def test_a_role_that_can_connect_cannot_take_the_lock_or_touch_runs(dsn, cli, sql, server, admin):
    nobody = new_role(admin, "nobody")
    # Even with USAGE on the schema (as a too-generous GRANT might give), the routines are
    # not PUBLIC's.
    sql(f"GRANT USAGE ON SCHEMA bioloupe_views TO {roles_quoted(admin, nobody)}")
    conn = connect_as(server, _dbname(dsn), nobody)
    try:
        for statement in ("SELECT bioloupe_views.try_refresh_lock()",
                          "SELECT bioloupe_views.start_run('cli')",
                          "SELECT bioloupe_views.finish_run(gen_random_uuid())",
                          "CALL bioloupe_views.refresh_all()"):
            assert "permission denied for" in _denied(conn, statement), statement
        result = cli("refresh", dsn=as_role(server, _dbname(dsn), nobody))
        assert result.returncode == 2
        assert "permission denied for" in result.stderr and result.stderr.count("\n") == 1
        assert "alembic -x refresher_role=<this role> upgrade head" in result.stderr
        # PostgreSQL lets anyone take an advisory lock: the refresh names who holds it.
        conn.cursor().execute("SELECT pg_advisory_lock(1651470447, 1)")
        pid = conn.get_backend_pid()
        blocked = cli("refresh", dsn=dsn)
        assert blocked.returncode == 1
        assert f"another refresh holds the lock: pid {pid}" in blocked.stderr
    finally:
        conn.close()
    assert sql("SELECT count(*) FROM bioloupe_views.run WHERE status = 'running'") == [(0,)]


def test_downgrade_stops_at_objects_it_did_not_create(dsn, cli, sql):
    sql("CREATE VIEW public.failed_refreshes AS"
        " SELECT mart, count(*) AS n FROM bioloupe_views.run_log WHERE status <> 'success'"
        " GROUP BY mart")
    result = cli("-x", f"dsn={dsn}", *DOWNGRADE, executable="alembic")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    failed = [l for l in (result.stdout + result.stderr).splitlines() if l.startswith("FAILED:")]
    assert len(failed) == 1 and "view public.failed_refreshes depends on table" in failed[0], failed
    # Nothing changed: the user's view, the schema and the marts are all there.
    assert sql("SELECT count(*) FROM public.failed_refreshes") is not None
    assert sql("SELECT to_regclass('public.mv_drug_trials') IS NOT NULL") == [(True,)]
    assert cli("refresh", dsn=dsn).returncode == 0
    sql("DROP VIEW public.failed_refreshes")
    assert cli("-x", f"dsn={dsn}", *DOWNGRADE, executable="alembic").returncode == 0
    assert sql("SELECT to_regnamespace('bioloupe_views')") == [(None,)]


# -- planted objects: nothing a role planted ever runs -------------------------------------
#
# A role `planter` (no superuser, CREATE on public or on the source schema) plants functions,
# aggregates and operators that a superuser would run: exact-type overloads that PostgreSQL
# prefers to pg_catalog's polymorphic or implicitly cast candidates wherever their schema is
# on the path at all, and copies of pg_catalog's own signatures, which win where a session's
# path puts their schema before pg_catalog (a database default, as here). Every command that
# touches the database then runs as the superuser, and afterwards nothing planted may have
# left a sign of running.

PLANTED_DIR = "/tmp"

# What a planted object does when it runs, each in its own subtransaction so that one that
# cannot happen (a read-only transaction, a caller without the right) does not stop the
# others: a row in public.planted_log (gone again if the caller's transaction rolls back), a
# call counted by the sequence public.planted_calls and a file written on the server (both
# kept even then), and its planter made a superuser (which works when a superuser runs it).
_HIT = """
CREATE FUNCTION {s}.planted_hit(which text) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $b$
BEGIN
    BEGIN PERFORM pg_catalog.nextval('public.planted_calls');
    EXCEPTION WHEN OTHERS THEN NULL; END;
    BEGIN INSERT INTO public.planted_log VALUES (current_user, which);
    EXCEPTION WHEN OTHERS THEN NULL; END;
    BEGIN EXECUTE pg_catalog.format('COPY (SELECT 1) TO %L', {files} OPERATOR(pg_catalog.||) which);
    EXCEPTION WHEN OTHERS THEN NULL; END;
    BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', {planter}::text);
    EXCEPTION WHEN OTHERS THEN NULL; END;
END $b$
"""


def _fn(signature: str, returns: str, body: str, which: str) -> str:
    return (f"CREATE FUNCTION {{s}}.{signature} RETURNS {returns} LANGUAGE plpgsql"
            f" SET search_path = pg_catalog, pg_temp AS $b$ BEGIN"
            f" PERFORM {{s}}.planted_hit('{which}'); {body} END $b$")


def _wrapper(name: str, args: str, returns: str, which: str) -> tuple[list[str], list[str]]:
    """A planted function `name(args)` that calls pg_catalog's of the same name."""
    params = ", ".join(f"${i + 1}" for i in range(len(args.split(",")))) if args else ""
    call = f"pg_catalog.{name}({params})"
    body = (f"RETURN QUERY SELECT {call}; RETURN;" if returns.startswith("SETOF")
            else f"RETURN {call};")
    return ([_fn(f"{name}({args})", returns, body, which)], [f"DROP FUNCTION {{s}}.{name}({args})"])


def _operator(op: str, left: str, right: str, returns: str, which: str):
    fn = f"planted_op_{which}"
    body = ("RETURN $1::pg_catalog.text OPERATOR(pg_catalog.||) $2::pg_catalog.text;" if op == "||"
            else f"RETURN $1 OPERATOR(pg_catalog.{op}) $2;")
    return ([_fn(f"{fn}({left}, {right})", returns, body, which),
             f"CREATE OPERATOR {{s}}.{op} (LEFTARG = {left}, RIGHTARG = {right}, FUNCTION = {{s}}.{fn})"],
            [f"DROP OPERATOR {{s}}.{op} ({left}, {right})", f"DROP FUNCTION {{s}}.{fn}({left}, {right})"])


def _aggregate(name: str, args: str, stype: str, step_args: str, step: str, which: str,
               initcond: str | None = None):
    fn = f"planted_step_{which}"
    init = f", INITCOND = '{initcond}'" if initcond is not None else ""
    return ([_fn(f"{fn}({step_args})", stype, step, which),
             f"CREATE AGGREGATE {{s}}.{name}({args}) (SFUNC = {{s}}.{fn}, STYPE = {stype}{init})"],
            [f"DROP AGGREGATE {{s}}.{name}({args})", f"DROP FUNCTION {{s}}.{fn}({step_args})"])


# Exact-type overloads: chosen over pg_catalog's candidates wherever their schema is on the
# path, pg_catalog first or not. The marts call array_agg(text) and array_remove(text[],
# unknown); the unique checks concatenate bigint || text and text || bigint; the tool's
# queries call unnest, cardinality, pg_relation_size and format on such types.
EXACT = {
    "array_agg(text)": _aggregate("array_agg", "text", "text[]", "text[], text",
                                  "RETURN pg_catalog.array_append($1, $2);", "array_agg"),
    "||(bigint, text)": _operator("||", "bigint", "text", "text", "concat_bigint_text"),
    "||(text, bigint)": _operator("||", "text", "bigint", "text", "concat_text_bigint"),
    "array_remove(text[], text)": _wrapper("array_remove", "text[], text", "text[]", "array_remove"),
    "unnest(oid[])": _wrapper("unnest", "oid[]", "SETOF oid", "unnest_oid"),
    "unnest(int2[])": _wrapper("unnest", "int2[]", "SETOF int2", "unnest_int2"),
    "unnest(text[])": _wrapper("unnest", "text[]", "SETOF text", "unnest_text"),
    "cardinality(text[])": _wrapper("cardinality", "text[]", "integer", "cardinality_text"),
    "pg_relation_size(oid)": ([_fn("pg_relation_size(oid)", "bigint",
                                   "RETURN pg_catalog.pg_relation_size($1::pg_catalog.regclass);",
                                   "pg_relation_size_oid")],
                              ["DROP FUNCTION {s}.pg_relation_size(oid)"]),
    "pg_total_relation_size(oid)": ([_fn("pg_total_relation_size(oid)", "bigint",
                                         "RETURN pg_catalog.pg_total_relation_size("
                                         "$1::pg_catalog.regclass);", "pg_total_relation_size_oid")],
                                    ["DROP FUNCTION {s}.pg_total_relation_size(oid)"]),
    "format(text, text)": _wrapper("format", "text, text", "text", "format_text"),
    # Not a better match: an equal one, so an unqualified to_jsonb(row) becomes ambiguous.
    "to_jsonb(record)": ([_fn("to_jsonb(record)", "jsonb", "RETURN pg_catalog.to_jsonb($1);",
                              "to_jsonb_record")], ["DROP FUNCTION {s}.to_jsonb(record)"]),
}

# pg_catalog's own signatures: chosen only where their schema comes before pg_catalog on the
# session's path.
SAME_SIGNATURE = {
    "pg_relation_size(regclass)": _wrapper("pg_relation_size", "regclass", "bigint", "pg_relation_size"),
    "pg_total_relation_size(regclass)": _wrapper("pg_total_relation_size", "regclass", "bigint",
                                                 "pg_total_relation_size"),
    "pg_indexes_size(regclass)": _wrapper("pg_indexes_size", "regclass", "bigint", "pg_indexes_size"),
    "cardinality(anyarray)": _wrapper("cardinality", "anyarray", "integer", "cardinality"),
    "to_jsonb(anyelement)": _wrapper("to_jsonb", "anyelement", "jsonb", "to_jsonb"),
    "current_setting(text)": _wrapper("current_setting", "text", "text", "current_setting"),
    "current_setting(text, boolean)": _wrapper("current_setting", "text, boolean", "text",
                                               "current_setting_missing_ok"),
    "set_config(text, text, boolean)": _wrapper("set_config", "text, text, boolean", "text",
                                                "set_config"),
    "pg_size_pretty(bigint)": _wrapper("pg_size_pretty", "bigint", "text", "pg_size_pretty"),
    "quote_ident(text)": _wrapper("quote_ident", "text", "text", "quote_ident"),
    "now()": _wrapper("now", "", "timestamptz", "now"),
    "count(*)": _aggregate("count", "*", "bigint", "bigint",
                           "RETURN $1 OPERATOR(pg_catalog.+) 1;", "count", initcond="0"),
    "string_agg(text, text)": _aggregate(
        "string_agg", "text, text", "text", "text, text, text",
        "RETURN CASE WHEN $1 IS NULL THEN $2 ELSE $1 OPERATOR(pg_catalog.||) $3"
        " OPERATOR(pg_catalog.||) $2 END;", "string_agg"),
    "=(text, text)": _operator("=", "text", "text", "boolean", "eq_text"),
    "<>(text, text)": _operator("<>", "text", "text", "boolean", "ne_text"),
    "=(bigint, bigint)": _operator("=", "bigint", "bigint", "boolean", "eq_bigint"),
}


class Planted:
    """The planter of one database, what it planted, and the signs of anything planted
    having run. Its own superuser session pins its path, so it never runs them itself."""

    def __init__(self, server, dsn: str):
        self.server, self.dbname = server, _dbname(dsn)
        self.db = Admin(dsn)
        self.db("SET search_path = pg_catalog, pg_temp")
        self.role = new_role(self.db, "planter")
        self.token = uuid.uuid4().hex[:10]
        self.files = f"bv_planted_{self.token}_"
        self.planted: dict[str, list[str]] = {}   # schema -> drop statements
        self.grant("public")
        with self._as_planter() as cur:
            cur.execute("CREATE TABLE public.planted_log (who text, what text)")
            cur.execute("GRANT INSERT ON public.planted_log TO PUBLIC")
            cur.execute("CREATE SEQUENCE public.planted_calls")
            cur.execute("GRANT USAGE ON SEQUENCE public.planted_calls TO PUBLIC")

    @contextlib.contextmanager
    def _as_planter(self):
        conn = connect_as(self.server, self.dbname, self.role)
        try:
            with conn.cursor() as cur:
                cur.execute("SET search_path = pg_catalog, pg_temp")
                yield cur
        finally:
            conn.close()

    def quoted(self, name: str) -> str:
        return self.db("SELECT pg_catalog.quote_ident(%s)", (name,))[0][0]

    def grant(self, schema: str) -> None:
        self.db(f"GRANT USAGE, CREATE ON SCHEMA {self.quoted(schema)} TO {self.quoted(self.role)}")

    def plant(self, schema: str = "public", objects=None) -> None:
        """Plant `objects` (names of EXACT or SAME_SIGNATURE; default all of both) in `schema`."""
        chosen = objects or [*EXACT, *SAME_SIGNATURE]
        s = self.quoted(schema)
        with self._as_planter() as cur:
            if schema not in self.planted:
                cur.execute(_HIT.format(s=s, files=_literal(f"{PLANTED_DIR}/{self.files}"),
                                        planter=_literal(self.role)))
                self.planted[schema] = []
            for name in chosen:
                create, drop = {**EXACT, **SAME_SIGNATURE}[name]
                for statement in create:
                    cur.execute(statement.format(s=s))
                self.planted[schema][:0] = [d.format(s=s) for d in drop]

    def remove(self, schema: str = "public") -> None:
        """Drop what was planted in `schema` (the log, the counter and planted_hit stay)."""
        with self._as_planter() as cur:
            for statement in self.planted.get(schema, []):
                cur.execute(statement)
        self.planted[schema] = []

    def path_first(self, *schemas: str) -> None:
        """The database's default search_path: these schemas before pg_catalog."""
        path = ", ".join([*map(self.quoted, schemas), "pg_catalog"])
        self.db(f"ALTER DATABASE {self.quoted(self.dbname)} SET search_path = {path}")

    def ran(self) -> list[str]:
        """Every sign of a planted object having run; [] when nothing did."""
        signs = [f"{who} ran {what}" for who, what in self.db(
            "SELECT who, what FROM public.planted_log")]
        last, called = self.db("SELECT last_value, is_called FROM public.planted_calls")[0]
        if called:
            signs.append(f"{last} calls counted")
        signs += [f"file {f}" for (f,) in self.db(
            "SELECT f FROM pg_catalog.pg_ls_dir(%s) f WHERE pg_catalog.starts_with(f, %s)",
            (PLANTED_DIR, self.files))]
        if self.db("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = %s", (self.role,))[0][0]:
            signs.append(f"{self.role} is a superuser")
        return signs

    def reset(self) -> None:
        """Forget every sign of a run (after a control, or a failure already recorded)."""
        self.db("TRUNCATE public.planted_log")
        self.db("SELECT pg_catalog.setval('public.planted_calls', 1, false)")
        self.db(f"ALTER ROLE {self.quoted(self.role)} NOSUPERUSER")
        for path in Path(PLANTED_DIR).glob(f"{self.files}*"):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        try:
            self.db(f"ALTER ROLE {self.quoted(self.role)} NOSUPERUSER")
        finally:
            self.db.close()
        for path in Path(PLANTED_DIR).glob(f"{self.files}*"):
            path.unlink(missing_ok=True)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@pytest.fixture
def planting(server):
    """planting(dsn) -> a Planted for that database; all closed at the end."""
    made = []

    def make(dsn):
        made.append(Planted(server, dsn))
        return made[-1]

    yield make
    for planted in made:
        planted.close()


class Steps:
    """Runs each command and collects every failure, so that one run shows them all."""

    def __init__(self, planted: Planted):
        self.planted, self.failures = planted, []

    def check(self, what: str, returncode: int, output: str, codes=(0,)) -> None:
        signs = self.planted.ran()
        if signs:
            self.failures.append(f"{what}: planted objects ran: {signs}")
            self.planted.reset()
        if "Traceback" in output:
            self.failures.append(f"{what}: traceback: {output[-2000:]}")
        elif returncode not in codes:
            self.failures.append(f"{what}: exit {returncode}: {output[-2000:]}")

    def cli(self, what: str, result, codes=(0,)) -> None:
        self.check(what, result.returncode, result.stdout + result.stderr, codes)

    def call(self, what: str, function, codes=(0,)) -> None:
        """A step in this process: exit 0 when it returns, 1 with its error when it raises."""
        try:
            function()
        except Exception as exc:  # noqa: BLE001  (reported with the step's name)
            self.check(what, 1, f"{type(exc).__name__}: {exc}", codes)
        else:
            self.check(what, 0, "", codes)

    def done(self) -> None:
        assert not self.failures, "\n".join(self.failures)


def _failed_lines(result) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines()
            if line.startswith("FAILED:")]


def _nothing_installed(planted: Planted) -> None:
    assert planted.db(
        "SELECT pg_catalog.to_regnamespace('bioloupe_views'),"
        " pg_catalog.to_regnamespace('bioloupe_views_checks'),"
        " pg_catalog.to_regclass('public.bioloupe_views_alembic_version')") == [(None, None, None)]
    assert planted.db("SELECT pg_catalog.count(*) FROM pg_catalog.pg_matviews") == [(0,)]


@pytest.mark.parametrize("objects, named", [
    (["array_agg(text)"], "function public.array_agg(text)"),
    (["||(bigint, text)"], "operator public.||(bigint,text)"),
    (["||(text, bigint)"], "operator public.||(text,bigint)"),
    (["array_remove(text[], text)"], "function public.array_remove(text[],text)"),
    (None, None),
], ids=["array_agg", "concat_bigint_text", "concat_text_bigint", "array_remove", "everything"])
def test_an_object_planted_before_the_migration_stops_it_and_never_runs(
        sources_dsn, cli, planting, objects, named):
    planted = planting(sources_dsn)
    planted.plant("public", objects)
    if objects is None:
        planted.path_first("public")   # pg_catalog's own signatures win too, in plain sessions
    result = alembic(cli, sources_dsn)
    output = result.stdout + result.stderr
    assert planted.ran() == [], output
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    failed = _failed_lines(result)
    assert len(failed) == 1, output
    assert "refusing to install:" in failed[0] and "nothing was changed" in failed[0], failed
    assert f"owner {planted.role}" in failed[0] and "(schema public," in failed[0], failed
    if named:
        assert f"is bound to {named} " in failed[0], failed
    _nothing_installed(planted)

    # Without the planted objects the same migration installs everything, bound to
    # PostgreSQL's own, and still nothing planted ran.
    planted.remove("public")
    result = alembic(cli, sources_dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert planted.ran() == []
    assert planted.db("SELECT pg_catalog.count(*) FROM pg_catalog.pg_matviews"
                      " WHERE ispopulated") == [(len(MARTS),)]


def test_nothing_planted_after_the_migration_runs_in_any_command(dsn, cli, planting, project):
    """Everything planted in public, and public first on the database's default path: every
    command, run by the superuser, runs none of it."""
    planted = planting(dsn)
    planted.plant("public")
    planted.path_first("public")
    # The control: a plain superuser session's own query runs them (and makes the planter a
    # superuser).
    control = psycopg2.connect(dsn)
    try:
        with control, control.cursor() as cur:
            cur.execute("SELECT count(*), array_agg(name) FROM public.drugs")
    finally:
        control.close()
    signs = planted.ran()
    assert "postgres ran count" in signs and f"{planted.role} is a superuser" in signs, signs
    planted.reset()
    assert planted.ran() == []

    steps = Steps(planted)
    # Bloat a mart, so that the runs' heap and index upkeep have work to do.
    planted.db("DELETE FROM public.trial_arm_results WHERE id % 10 <> 0")

    steps.cli("refresh-views", cli(dsn=dsn, executable="refresh-views"))
    steps.cli("refresh-views (index upkeep)", cli(
        "--select", "mv_efficacy_evidence", "--compact-up-to", "0", dsn=dsn,
        executable="refresh-views"))
    steps.cli("refresh-views --atomic", cli("--atomic", dsn=dsn, executable="refresh-views"))
    steps.cli("refresh --no-concurrently --threads 1",
              cli("refresh", "--no-concurrently", "--threads", "1", dsn=dsn))
    steps.cli("check", cli("check", dsn=dsn))
    steps.cli("status", cli("status", dsn=dsn))
    steps.cli("status --json", cli("status", "--json", dsn=dsn))
    steps.cli("doctor", cli("doctor", dsn=dsn))
    # The installed marts are bound to PostgreSQL's own: no hand edit. What changed is what
    # their files would be bound to now, which diff names (and a migration would refuse).
    drift = cli("diff", dsn=dsn)
    steps.cli("diff", drift, codes=(1,))
    if ("edited by hand" in drift.stdout
            or "v1/query.sql would now be bound to function public.array_agg(text)" not in drift.stdout):
        steps.failures.append(f"diff does not name the planted aggregate: {drift.stdout[-3000:]}")
    for fmt in ("text", "mermaid", "dot"):
        steps.cli(f"graph --format {fmt}", cli("graph", "--format", fmt, dsn=dsn))
    steps.cli("track-sources", cli("track-sources", dsn=dsn))
    steps.cli("track-sources --apply", cli("track-sources", "--apply", dsn=dsn))

    # A writer of a tracked source (a plain superuser session, public first on its path)
    # fires the change trigger.
    writer = psycopg2.connect(dsn)
    try:
        with writer, writer.cursor() as cur:
            cur.execute("UPDATE public.drugs SET drug_status = drug_status"
                        " WHERE id OPERATOR(pg_catalog.=) (SELECT pg_catalog.min(id) FROM public.drugs)")
    finally:
        writer.close()
    steps.check("a write to a tracked source", 0, "")
    steps.cli("refresh-views --changed-only", cli("--changed-only", dsn=dsn, executable="refresh-views"))
    steps.cli("doctor (tracked)", cli("doctor", dsn=dsn))
    steps.cli("track-sources --remove", cli("track-sources", "--remove", dsn=dsn))
    steps.cli("track-sources --apply --remove", cli("track-sources", "--apply", "--remove", dsn=dsn))

    # pg_cron's procedure, called from a plain superuser session.
    def refresh_all():
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        try:
            conn.cursor().execute("CALL bioloupe_views.refresh_all()")
        finally:
            conn.close()

    steps.call("CALL bioloupe_views.refresh_all()", refresh_all)
    steps.cli("the pytest plugin", cli(
        "--pyargs", "bioloupe_views.data_checks", f"--bioloupe-dsn={dsn}", "-q",
        "-p", "no:cacheprovider", executable="pytest"))
    steps.cli("alembic upgrade head (at head)", alembic(cli, dsn))

    # A new version of the mart two others read: the migration would bind it (and the two
    # rebuilt above it, and the checks) to the planted aggregate, so it refuses, changing nothing.
    runner = CliRunner()
    scaffolded = runner.invoke(bioloupe_cli.main, ["new-version", "mv_development_programs"])
    assert scaffolded.exit_code == 0, scaffolded.output
    refused = []

    def replace():
        try:
            migrate.upgrade(dsn)
        except Exception as exc:  # noqa: BLE001
            refused.append(str(exc))

    steps.call("new-version + alembic upgrade head", replace)
    if not refused or "refusing to install" not in refused[0] or planted.role not in refused[0]:
        steps.failures.append(f"the replacing migration did not refuse, naming the planter: {refused}")
    assert planted.db("SELECT version FROM bioloupe_views.mart"
                      " WHERE name = 'mv_development_programs'") == [(1,)]
    assert planted.db("SELECT pg_catalog.count(*) FROM pg_catalog.pg_matviews"
                      " WHERE schemaname = 'public' AND ispopulated") == [(len(MARTS),)]
    steps.done()


@pytest.mark.dagster
def test_nothing_planted_after_the_migration_runs_in_dagster(dsn, planting):
    dg = pytest.importorskip("dagster")
    from bioloupe_views.dagster import BioloupeViewsResource, build_definitions

    planted = planting(dsn)
    planted.plant("public")
    planted.path_first("public")
    defs = build_definitions(resource=BioloupeViewsResource(dsn=dsn))
    result = dg.materialize(defs.assets, resources=defs.resources,
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert planted.ran() == []
    assert result.success
    assert len(result.get_asset_materialization_events()) == len(MARTS)


def test_an_object_planted_in_the_source_schema_is_refused_and_never_runs(
        sources_dsn, sources_sql, cli, planting):
    sources_sql("CREATE SCHEMA raw")
    for table in contract.tables():
        sources_sql(pgsql.SQL("ALTER TABLE {} SET SCHEMA raw").format(pgsql.Identifier("public", table)))
    planted = planting(sources_dsn)
    planted.grant("raw")
    planted.plant("raw", list(EXACT))
    result = alembic(cli, sources_dsn, "source_schema=raw")
    output = result.stdout + result.stderr
    assert planted.ran() == [], output
    assert result.returncode != 0 and "Traceback" not in output, output
    failed = _failed_lines(result)
    assert len(failed) == 1 and "refusing to install:" in failed[0], output
    assert "raw." in failed[0] and "(schema raw," in failed[0], failed
    _nothing_installed(planted)

    planted.remove("raw")
    result = alembic(cli, sources_dsn, "source_schema=raw")
    assert result.returncode == 0, result.stdout + result.stderr
    assert planted.ran() == []

    # Planted again, once the marts exist, with the source schema first on the path.
    planted.plant("raw")
    planted.plant("public", list(EXACT))
    planted.path_first("raw", "public")
    steps = Steps(planted)
    steps.cli("refresh-views", cli(dsn=sources_dsn, executable="refresh-views"))
    steps.cli("check", cli("check", dsn=sources_dsn))
    steps.cli("status", cli("status", dsn=sources_dsn))
    steps.cli("doctor", cli("doctor", dsn=sources_dsn))
    steps.cli("diff", cli("diff", dsn=sources_dsn), codes=(0, 1))
    steps.cli("graph", cli("graph", dsn=sources_dsn))
    steps.cli("track-sources --apply", cli("track-sources", "--apply", dsn=sources_dsn))
    steps.cli("refresh-views --changed-only", cli("--changed-only", dsn=sources_dsn,
                                                  executable="refresh-views"))

    def refresh_all():
        conn = psycopg2.connect(sources_dsn)
        conn.autocommit = True
        try:
            conn.cursor().execute("CALL bioloupe_views.refresh_all()")
        finally:
            conn.close()

    steps.call("CALL bioloupe_views.refresh_all()", refresh_all)
    steps.cli("alembic upgrade head (at head)", alembic(cli, sources_dsn))
    steps.done()


def test_a_planted_unnest_leaves_the_index_upkeep_working(dsn, cli, planting):
    """unnest(oid[]) and its kin planted in public, public first on the path: the upkeep's
    queries resolve none of them (no ambiguity, no error swallowed into "no upkeep"), and a
    mart whose indexes a run has bloated gets them rebuilt."""
    planted = planting(dsn)
    planted.plant("public", ["unnest(oid[])", "unnest(int2[])", "unnest(text[])",
                             "pg_relation_size(oid)", "pg_relation_size(regclass)",
                             "pg_indexes_size(regclass)", "to_jsonb(record)"])
    planted.path_first("public")
    planted.db("DELETE FROM public.trial_arm_results WHERE id % 10 <> 0")
    result = cli("--select", "mv_efficacy_evidence", "--compact-up-to", "0", dsn=dsn,
                 executable="refresh-views")
    output = result.stdout + result.stderr
    assert planted.ran() == [], output
    assert result.returncode == 0, output
    assert "Upkeep: rebuilt the indexes of mv_efficacy_evidence concurrently" in result.stdout, output
    assert "error" not in result.stderr.lower(), output


def _unique_check_bound_to_the_planted_operator(planted: Planted) -> str:
    """Recreate mv_development_programs' unique check view by hand, as a superuser whose path
    finds public: bound to the planted ||(bigint, text), as older releases installed it."""
    view = planted.db("SELECT relation FROM bioloupe_views.mart_check"
                      " WHERE mart = 'mv_development_programs' AND test = 'unique'")[0][0]
    ident = f"bioloupe_views_checks.{planted.quoted(view)}"
    definition = planted.db("SELECT pg_catalog.pg_get_viewdef(%s::pg_catalog.regclass)", (ident,))[0][0]
    planted.db("BEGIN")
    planted.db("SET LOCAL search_path = public, pg_catalog")
    planted.db(f"CREATE OR REPLACE VIEW {ident} AS {definition}")
    planted.db("COMMIT")
    bound = planted.db(
        "SELECT pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0)"
        " FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend d"
        "   ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid"
        " WHERE r.ev_class = %s::pg_catalog.regclass"
        "   AND d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass", (ident,))
    assert ("operator public.||(bigint,text)",) in bound, bound
    return view


def test_a_view_bound_to_a_planted_object_is_reported_and_repaired(dsn, cli, planting):
    planted = planting(dsn)
    planted.plant("public", ["||(bigint, text)"])
    view = _unique_check_bound_to_the_planted_operator(planted)
    named = "operator public.||(bigint,text)"

    for command in ("diff", "doctor"):
        result = cli(command, dsn=dsn)
        output = result.stdout + result.stderr
        assert result.returncode != 0, (command, output)
        assert "Traceback" not in output and "No drift" not in output, (command, output)
        # One line for the installed view bound to it (diff also says which files would be).
        lines = [line for line in output.splitlines() if f"is bound to {named}" in line]
        assert len(lines) == 1, (command, output)
        assert f"view bioloupe_views_checks.{view} is bound" in lines[0], (command, output)
        assert f"owner {planted.role}" in lines[0], (command, output)
    assert planted.ran() == []

    # While the operator is still there, a migration can only refuse, naming it.
    result = alembic(cli, dsn)
    failed = _failed_lines(result)
    assert result.returncode != 0 and len(failed) == 1, result.stdout + result.stderr
    assert f"is bound to {named} " in failed[0], failed
    assert planted.ran() == []

    # Moved away (where no project view's names resolve), the next migration rebinds the
    # view to PostgreSQL's own operator, and diff and doctor are clean again.
    planted.db(f"CREATE SCHEMA quarantine AUTHORIZATION {planted.quoted(planted.role)}")
    with planted._as_planter() as cur:
        cur.execute("ALTER OPERATOR public.|| (bigint, text) SET SCHEMA quarantine")
        cur.execute("ALTER FUNCTION public.planted_op_concat_bigint_text(bigint, text)"
                    " SET SCHEMA quarantine")
    result = alembic(cli, dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert planted.ran() == []
    for command in ("diff", "doctor"):
        result = cli(command, dsn=dsn)
        assert result.returncode == 0, (command, result.stdout + result.stderr)
    assert cli("check", dsn=dsn).returncode == 0
    assert planted.ran() == []
