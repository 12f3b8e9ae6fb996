"""Issue 8: the app's read-only role, and the privileges the refresh itself needs.

Roles are cluster-wide, so each test makes its own, with a unique name."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from bioloupe_views import replace, roles
from bioloupe_views.dev.pgserver import server_major

MARTS = {"mv_development_programs", "mv_drug_trials", "mv_efficacy_evidence",
         "mv_competitive_landscape", "mv_drug_pipeline"}
PASSWORD = "Pw-7f3c9d2e"

# Every privilege a role holds in a database, whatever the object: tables, views, matviews,
# sequences, schemas, functions, the database, default privileges and role memberships.
PRIVILEGES = """
SELECT 'relation ' || c.oid::regclass::text, a.privilege_type
FROM pg_class c, aclexplode(c.relacl) a WHERE a.grantee = %(role)s::regrole
UNION ALL
SELECT 'schema ' || n.nspname, a.privilege_type
FROM pg_namespace n, aclexplode(n.nspacl) a WHERE a.grantee = %(role)s::regrole
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text, a.privilege_type
FROM pg_proc p, aclexplode(p.proacl) a WHERE a.grantee = %(role)s::regrole
UNION ALL
SELECT 'database ' || d.datname, a.privilege_type
FROM pg_database d, aclexplode(d.datacl) a WHERE a.grantee = %(role)s::regrole
UNION ALL
SELECT 'default acl', a.privilege_type
FROM pg_default_acl d, aclexplode(d.defaclacl) a WHERE a.grantee = %(role)s::regrole
UNION ALL
SELECT 'member of ' || m.roleid::regrole::text, 'MEMBER'
FROM pg_auth_members m WHERE m.member = %(role)s::regrole
"""


class Admin:
    """Superuser SQL on one database of the test server."""

    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True

    def __call__(self, statement, params=None):
        with self.conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None

    def close(self):
        self.conn.close()


@pytest.fixture
def admin(sources_dsn):
    a = Admin(sources_dsn)
    yield a
    a.close()


def new_role(admin, prefix, name=None):
    role = name or f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin(admin("SELECT format('CREATE ROLE %%I LOGIN PASSWORD %%L', %s::text, %s::text)",
                (role, PASSWORD))[0][0])
    return role


def as_role(server, dbname, role):
    return f"postgresql://{role}:{PASSWORD}@127.0.0.1:{server.port}/{dbname}"


def privileges(admin, role):
    return set(admin(PRIVILEGES, {"role": roles_quoted(admin, role)}))


def roles_quoted(admin, role):
    return admin("SELECT quote_ident(%s)", (role,))[0][0]


def alembic(cli, dsn, *x, env=None):
    args = ["-x", f"dsn={dsn}"]
    for arg in x:
        args += ["-x", arg]
    return cli(*args, "upgrade", "head", executable="alembic", env=env)


def connect_as(server, dbname, role):
    conn = psycopg2.connect(as_role(server, dbname, role))
    conn.autocommit = True
    return conn


def denied(conn, statement):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege) as info:
        conn.cursor().execute(statement)
    return str(info.value)


def test_reader_gets_select_on_the_marts_and_nothing_else(sources_dsn, admin, cli, server):
    reader = new_role(admin, "reader")
    result = alembic(cli, sources_dsn, f"reader_role={reader}")
    assert result.returncode == 0, result.stderr
    expected = {(f"relation {m}", "SELECT") for m in MARTS}
    assert privileges(admin, reader) == expected
    dbname = sources_dsn.rsplit("/", 1)[1]
    conn = connect_as(server, dbname, reader)
    try:
        for mart in MARTS:
            conn.cursor().execute(f"SELECT count(*) FROM public.{mart}")
        assert "permission denied for table drugs" in denied(conn, "SELECT 1 FROM public.drugs")
        # Every role may look names up in bioloupe_views (the source change trigger runs with
        # the writer's rights), and read nothing there.
        assert "permission denied for table run_log" in denied(
            conn, "SELECT 1 FROM bioloupe_views.run_log")
        assert "permission denied for function start_run" in denied(
            conn, "SELECT bioloupe_views.start_run('cli')")
        # PostgreSQL 17 made REFRESH a privilege (MAINTAIN), so its error changed.
        refresh_denied = ("must be owner" if server_major(server.bindir) < 17
                          else "permission denied for materialized view mv_drug_trials")
        assert refresh_denied in denied(conn, "REFRESH MATERIALIZED VIEW public.mv_drug_trials")
        assert "must be owner" in denied(conn, "DROP MATERIALIZED VIEW public.mv_drug_trials")
    finally:
        conn.close()

    # The grants survive refreshes, concurrent and plain, and a definition change.
    for args in ((), ("--no-concurrently",)):
        assert cli("refresh", *args, dsn=sources_dsn).returncode == 0
        assert privileges(admin, reader) == expected
    migration = psycopg2.connect(sources_dsn)
    replace.replace(migration, "mv_development_programs", 1)   # drops and rebuilds 3 marts
    migration.commit()
    migration.close()
    assert privileges(admin, reader) == expected
    conn = connect_as(server, dbname, reader)
    for mart in MARTS:
        conn.cursor().execute(f"SELECT count(*) FROM public.{mart}")
    conn.close()


def test_role_from_the_environment_x_wins_and_late_configuration_applies(sources_dsn, admin, cli):
    assert alembic(cli, sources_dsn).returncode == 0
    from_env = new_role(admin, "env_reader")
    # A name that needs quoting, and would be an injection if it were formatted into SQL.
    from_x = new_role(admin, None, name=f'app "{uuid.uuid4().hex[:6]}"; DROP TABLE drugs; --')
    assert privileges(admin, from_env) == set() and privileges(admin, from_x) == set()
    # Already at head: the run still grants the configured role (and -x beats the variable).
    result = alembic(cli, sources_dsn, f"reader_role={from_x}",
                     env={roles.READER_ROLE_VAR: from_env})
    assert result.returncode == 0, result.stderr
    assert privileges(admin, from_x) == {(f"relation {m}", "SELECT") for m in MARTS}
    assert privileges(admin, from_env) == set()
    assert admin("SELECT to_regclass('public.drugs') IS NOT NULL") == [(True,)]
    result = alembic(cli, sources_dsn, env={roles.READER_ROLE_VAR: from_env})
    assert result.returncode == 0, result.stderr
    assert privileges(admin, from_env) == {(f"relation {m}", "SELECT") for m in MARTS}


def test_unknown_reader_role_stops_the_migration_before_anything(sources_dsn, admin, cli):
    missing = f"nobody_{uuid.uuid4().hex[:8]}"
    result = alembic(cli, sources_dsn, f"reader_role={missing}")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    failed = [l for l in (result.stdout + result.stderr).splitlines() if l.startswith("FAILED:")]
    assert len(failed) == 1, result.stdout + result.stderr
    assert f"the reader role '{missing}' does not exist" in failed[0]
    assert f'CREATE ROLE "{missing}" NOLOGIN' in failed[0] or f"CREATE ROLE {missing} NOLOGIN" in failed[0]
    assert admin("SELECT to_regnamespace('bioloupe_views') IS NULL") == [(True,)]


def test_configured_reads_x_then_environment():
    assert roles.configured({"reader_role": "a"}, {roles.READER_ROLE_VAR: "b"}) == "a"
    assert roles.configured({}, {roles.READER_ROLE_VAR: "b"}) == "b"
    assert roles.configured({"reader_role": " "}, {}) is None
    assert roles.configured({}, {}) is None


def test_refresh_privileges_owner_member_and_non_owner(sources_dsn, admin, cli, server):
    """What the README documents: a non-superuser owner migrates and refreshes; a member of
    the owning role can refresh; anyone else gets a clear per-mart error naming the owner
    requirement (PostgreSQL 15) and MAINTAIN (17+)."""
    dbname = sources_dsn.rsplit("/", 1)[1]
    owner, member, other = (new_role(admin, p) for p in ("owner", "member", "other"))
    q = {r: roles_quoted(admin, r) for r in (owner, member, other)}
    admin(f"GRANT CREATE ON DATABASE {roles_quoted(admin, dbname)} TO {q[owner]}")
    admin(f"GRANT CREATE ON SCHEMA public TO {q[owner]}")
    admin(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {q[owner]}")
    result = alembic(cli, as_role(server, dbname, owner))
    assert result.returncode == 0, result.stderr
    assert cli("refresh", dsn=as_role(server, dbname, owner)).returncode == 0

    # Not the owner nor the refresher: the run log is writable, but the engine's routines are
    # not PUBLIC's. One line, exit 2, naming the fix.
    admin(f"GRANT USAGE ON SCHEMA bioloupe_views TO {q[other]}")
    admin(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bioloupe_views TO {q[other]}")
    result = cli("refresh", "--select", "mv_drug_trials", dsn=as_role(server, dbname, other))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and PASSWORD not in result.stdout + result.stderr
    assert result.stderr.count("\n") == 1
    assert "permission denied for function try_refresh_lock" in result.stderr
    assert "alembic -x refresher_role=<this role> upgrade head" in result.stderr

    # Allowed to run the engine but not to refresh (refresh_view is the owner's): that mart
    # fails, logged, and the run says why.
    admin(f"GRANT EXECUTE ON ALL ROUTINES IN SCHEMA bioloupe_views TO {q[other]}")
    admin(f"REVOKE EXECUTE ON FUNCTION bioloupe_views.refresh_view(text, boolean) FROM {q[other]}")
    before = admin("SELECT count(*) FROM bioloupe_views.run_log")[0][0]
    result = cli("refresh", "--select", "mv_drug_trials", dsn=as_role(server, dbname, other))
    assert result.returncode == 1, result.stdout + result.stderr
    error = "permission denied for function refresh_view"
    line = next(l for l in result.stdout.splitlines() if error in l)
    assert "refresher_role" in line
    # The run log keeps PostgreSQL's own message; the hint is the CLI's.
    assert admin("SELECT status, error FROM bioloupe_views.run_log WHERE id > %s", (before,)) == [
        ("error", error)]

    # A member of the owning role may refresh (and write the log through the owner's rights).
    admin(f"GRANT {q[owner]} TO {q[member]}")
    result = cli("refresh", dsn=as_role(server, dbname, member))
    assert result.returncode == 0, result.stdout + result.stderr


def test_explain_names_the_grant():
    class Denied(Exception):
        pgcode = roles.INSUFFICIENT_PRIVILEGE

    assert "MAINTAIN ON mv_x" in roles.explain(Denied("must be owner of materialized view mv_x"))
    # PostgreSQL 17+: a REFRESH and a SELECT are denied alike; without the statement, both grants.
    both = roles.explain(Denied("permission denied for materialized view mv_x"))
    assert "GRANT SELECT ON mv_x" in both and "GRANT MAINTAIN ON mv_x" in both
    for message in ("permission denied for schema bioloupe_views",
                    "permission denied for table run_log", "permission denied for view refresh_order",
                    "permission denied for function try_refresh_lock"):
        assert "alembic -x refresher_role=<this role> upgrade head" in roles.explain(Denied(message))
    assert "GRANT SELECT ON drugs" in roles.explain(Denied("permission denied for table drugs"))
    assert "GRANT CREATE ON DATABASE db" in roles.explain(Denied("permission denied for database db"))

    class Other(Exception):
        pgcode = "57014"

    assert roles.explain(Other("canceling statement due to statement timeout\nCONTEXT: x")) == \
        "canceling statement due to statement timeout"


def test_explain_reads_the_statement_and_the_server_version():
    """A materialized view's hint depends on what was denied and on the server's major."""
    class Denied(Exception):
        pgcode = roles.INSUFFICIENT_PRIVILEGE

        def __init__(self, message, version, context=None, query=None):
            super().__init__(message)
            connection = type("Connection", (), {"server_version": version})()
            self.cursor = type("Cursor", (), {"connection": connection, "query": query})()
            self.diag = type("Diag", (), {"context": context})()

    in_function = 'SQL statement "REFRESH MATERIALIZED VIEW public.mv_x"\nPL/pgSQL function f()'
    refresh_17 = roles.explain(Denied("permission denied for materialized view mv_x", 170010,
                                      context=in_function, query=b"SELECT f()"))
    assert "GRANT MAINTAIN ON mv_x" in refresh_17 and "GRANT SELECT" not in refresh_17
    read_17 = roles.explain(Denied("permission denied for materialized view mv_x", 180006,
                                   query=b"SELECT count(*) FROM mv_x"))
    assert "GRANT SELECT ON mv_x" in read_17 and "MAINTAIN" not in read_17
    refresh_15 = roles.explain(Denied("must be owner of materialized view mv_x", 150018,
                                      query=b"REFRESH MATERIALIZED VIEW mv_x"))
    assert "member of the owning role" in refresh_15 and "GRANT MAINTAIN ON mv_x" in refresh_15
    drop_17 = roles.explain(Denied("must be owner of materialized view mv_x", 170010,
                                   query=b"DROP MATERIALIZED VIEW mv_x"))
    assert "only the owner of mv_x" in drop_17 and "REFRESH" not in drop_17
    # What the engine recorded (message, SQLSTATE, CONTEXT) gives the same hint as the error.
    logged = roles.explain_message("permission denied for materialized view mv_x",
                                   roles.INSUFFICIENT_PRIVILEGE, in_function, 170010)
    assert logged == refresh_17
