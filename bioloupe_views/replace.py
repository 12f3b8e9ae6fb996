"""Replace a mart with another version of its SQL, dependents, indexes and grants included.

Two modes, both used through `op.replace_materialized_view(name, version, side_by_side=...)`:

- in place: lock, drop the dependents top-down and the mart, create the new version and the
  dependents bottom-up, populated. Readers wait for the whole rebuild.
- side by side: build the new version, populated and indexed, and populated copies of every
  dependent, in a scratch schema while readers keep reading the old ones; then swap: drop
  the old relations and move the new ones into place (ALTER ... SET SCHEMA, which moves the
  indexes too and needs no renaming). Readers wait only for the swap.

Locks are held until the transaction commits. Inside Alembic's single migration transaction
(migrations/env.py) that means: readers wait from the swap to the end of the whole `alembic
upgrade` run, so a side-by-side replacement should be the last operation of the last migration
applied. Inside `with op.get_context().autocommit_block():` the operation runs its own two
transactions instead (build, then a swap that commits at once): readers wait for the swap
alone, at the price of the build committing before the rest of the migration does (the
operation is idempotent, so re-running the migration after a later failure is safe).

Every lock on the old relations is requested with a short lock_timeout and retried, so a
long query or a refresh in progress never makes every reader queue behind the migration.
The result (timings included) is returned and logged on the "bioloupe_views.replace" logger
with `extra={"bioloupe_replacement": {...}}`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import asdict, dataclass, field

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from . import binding, checks, definitions, fast_checks, refresh_lock
from . import dependents as deps
from .errors import UserError
from .definitions import in_project

log = logging.getLogger("bioloupe_views.replace")

SCRATCH_SCHEMA = "bioloupe_views_swap"
DEFAULT_LOCK_TIMEOUT = refresh_lock.DEFAULT_LOCK_TIMEOUT
DEFAULT_LOCK_RETRIES = refresh_lock.DEFAULT_LOCK_RETRIES


class ReplaceError(UserError):
    """The replacement cannot be done as asked; the message says what to change."""


@dataclass
class Replacement:
    """What a replacement did and how long readers were blocked."""

    mart: str
    from_version: int | None
    to_version: int
    mode: str                          # "in_place" or "side_by_side"
    own_transactions: bool             # True inside an autocommit block
    dependents: list[str] = field(default_factory=list)
    started_at: float = 0.0            # time.time() stamps, to line up with readers' clocks
    swap_started_at: float = 0.0       # first lock requested on the old relations
    swap_ended_at: float = 0.0
    build_seconds: float = 0.0         # new version and copies, readers not blocked
    lock_wait_seconds: float = 0.0     # waiting for readers to let go (newcomers queue)
    swap_seconds: float = 0.0          # lock request to end of the operation: readers blocked
    lock_attempts: int = 0
    refresh_lock_wait_seconds: float = 0.0  # waiting for a running refresh to finish


def replace(conn, name: str, version: int, side_by_side: bool = False,
            lock_timeout: str | None = DEFAULT_LOCK_TIMEOUT,
            lock_retries: int = DEFAULT_LOCK_RETRIES) -> Replacement:
    """Replace public.<name> with version `version` of its SQL on DB-API connection `conn`
    (in its transaction, or in transactions of its own when it is in autocommit)."""
    target = definitions.get(name).version(version)  # fails before touching anything
    own = bool(conn.autocommit)
    with conn.cursor() as cur:
        result = _Replacer(cur, target, side_by_side, own, lock_timeout, lock_retries).run()
    log.info("replaced %s v%s -> v%s %s: build %.3fs, readers blocked %.3fs (lock wait %.3fs, "
             "%d attempt(s)), dependents rebuilt: %s", result.mart, result.from_version,
             result.to_version, result.mode.replace("_", "-"), result.build_seconds,
             result.swap_seconds, result.lock_wait_seconds, result.lock_attempts,
             ", ".join(result.dependents) or "none",
             extra={"bioloupe_replacement": asdict(result)})
    return result


class _Replacer:
    def __init__(self, cur, target: definitions.MartVersion, side_by_side: bool, own: bool,
                 lock_timeout: str | None, lock_retries: int):
        self.cur, self.target = cur, target
        self.mart, self.version = definitions.get(target.mart), target.number
        self.side_by_side, self.own = side_by_side, own
        self.lock_timeout, self.lock_retries = lock_timeout, lock_retries
        self.result = Replacement(target.mart, None, target.number,
                                  "side_by_side" if side_by_side else "in_place", own)

    # -- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self):
        """A transaction of our own in autocommit mode; the caller's otherwise."""
        if not self.own:
            yield
            return
        self.cur.execute("BEGIN")
        try:
            yield
        except BaseException:
            with contextlib.suppress(psycopg2.Error):
                self.cur.execute("ROLLBACK")
            raise
        self.cur.execute("COMMIT")

    # -- the two modes --------------------------------------------------------------------

    def run(self) -> Replacement:
        """Under the refresh lock, from the capture to the swap: a refresh committed in
        between would be thrown away by the swap while the run log called it fresh."""
        self._take_refresh_lock()
        try:
            return self._run()
        finally:
            self._release_refresh_lock()

    def _take_refresh_lock(self) -> None:
        """The refresh lock, waiting for a running refresh in short steps (the same
        lock_timeout and lock_retries as the swap's locks), or a ReplaceError naming it."""
        try:
            self.result.refresh_lock_wait_seconds = refresh_lock.hold(
                self.cur, f"replace {self.mart.name}", self.lock_timeout, self.lock_retries)
        except refresh_lock.RefreshRunningError as exc:
            raise ReplaceError(str(exc)) from None

    def _release_refresh_lock(self) -> None:
        if self.cur.connection.closed:
            return
        if self.cur.connection.get_transaction_status() == \
                psycopg2.extensions.TRANSACTION_STATUS_INERROR:
            return  # the session's lock goes with the session, or with the next statement
        refresh_lock.release(self.cur)

    def _run(self) -> Replacement:
        result = self.result
        result.started_at = time.time()
        started = time.perf_counter()
        self.scratch_created = False
        if self.side_by_side:
            try:
                with self._transaction():
                    self._capture()
                    self._build_copies()
                result.build_seconds = time.perf_counter() - started
                with self._transaction():
                    self._swap()
            except BaseException:
                if self.own and self.scratch_created:
                    self._drop_scratch()
                raise
        else:
            with self._transaction():
                self._capture()
                self._lock_and_drop()
                self._create_root(schema=None)
                self._rebuild_dependents(schema=None)
                self._analyze(schema=None)
                self._register()
            result.build_seconds = time.perf_counter() - started
        result.swap_ended_at = time.time()
        result.swap_seconds = result.swap_ended_at - result.swap_started_at
        return result

    def _capture(self) -> None:
        cur, mart = self.cur, self.mart
        found = deps.relation_oid(cur, definitions.MART_SCHEMA, mart.name)
        if found is None or found[1] != "m":
            raise ReplaceError(
                f"{definitions.MART_SCHEMA}.{mart.name} is not a materialized view in this database: "
                f"create it with op.create_materialized_view({mart.name!r}, version=...)")
        cur.execute(in_project("SELECT version FROM {project}.mart WHERE name = %s"), (mart.name,))
        row = cur.fetchone()
        if row is None:
            raise ReplaceError(f"{mart.name} is not registered in bioloupe_views.mart: create it "
                               f"with op.create_materialized_view({mart.name!r}, version=...)")
        self.result.from_version = row[0]
        root_oid = found[0]
        found_deps = self._dependents(root_oid)
        self._refuse_other_sessions_temp_views([oid for oid, _ in found_deps])
        self.path = deps.capture_path(cur, [root_oid, *(oid for oid, _ in found_deps)])
        previous = deps.set_search_path(cur, self.path)
        try:
            self.root = deps.capture(cur, root_oid)
            self.dependents = [deps.capture(cur, oid, depth) for oid, depth in found_deps]
        finally:
            deps.restore_search_path(cur, previous)
        self.result.dependents = [f"{d.schema}.{d.name}" for d in self.dependents]
        self._refuse_foreign_owners()

    def _refuse_foreign_owners(self) -> None:
        """Each dependent is dropped and rebuilt as its owner: the migration's role must be
        able to act as that owner (a member of it, or a superuser). Otherwise stop before
        anything is dropped, naming the first such view."""
        cur = self.cur
        for rel in self.dependents:
            cur.execute("SELECT pg_catalog.pg_has_role(current_user, %s, 'MEMBER')", (rel.owner,))
            if not cur.fetchone()[0]:
                raise ReplaceError(
                    f"cannot rebuild {rel.schema}.{rel.name} (owner {rel.owner}) above "
                    f"{self.mart.name}: the migration's role may not act as its owner; run the "
                    f"migration as a member of {rel.owner} or a superuser, or have {rel.owner} "
                    "drop it first; nothing was changed")

    def _refuse_other_sessions_temp_views(self, oids: list[int]) -> None:
        """A temporary view of another session lives in that session alone: nobody else can
        drop or rebuild it, so the replacement cannot go on while it exists. Name it, its
        role and that role's sessions, which are the ones that can let go of it."""
        cur = self.cur
        cur.execute((definitions.SQL_DIR / "_queries" / "other_sessions_temp_views.sql").read_text(),
                    (oids,))
        found = cur.fetchall()
        if found:
            view, owner, sessions = found[0]
            raise ReplaceError(
                f"cannot replace {self.mart.name}: the temporary view {view} of role {owner} "
                f"reads it, and only its session can drop it (sessions of {owner}: "
                f"{sessions or 'none seen'}); ask them to DROP VIEW {view} or end the session "
                "(SELECT pg_terminate_backend(pid)), then migrate again; nothing was changed")

    def _dependents(self, root_oid: int) -> list[tuple[int, int]]:
        """The views to rebuild: every view above the mart but the mart's own checks, which
        are replaced by the new version's (_register)."""
        cur = self.cur
        cur.execute(in_project("SELECT to_regclass('{project_text}.mart_check') IS NOT NULL"))
        own_checks: set[int] = set()
        if cur.fetchone()[0]:
            cur.execute(in_project("SELECT to_regclass(format('%%I.%%I', %s::text, relation))::oid"
                        " FROM {project}.mart_check WHERE mart = %s"),
                        (definitions.CHECKS_SCHEMA, self.mart.name))
            own_checks = {oid for (oid,) in cur.fetchall()}
            cur.execute("SELECT to_regclass(%s)::oid", (sql.Identifier(
                definitions.CHECKS_SCHEMA, fast_checks.batch_relation(self.mart.name)).as_string(cur),))
            own_checks.add(cur.fetchone()[0])
        return [(oid, depth) for oid, depth in deps.find(cur, root_oid) if oid not in own_checks]

    def _create_root(self, schema: str | None) -> int:
        """The new version, populated, with its indexes, the old one's grants, owner and
        comments (the version's description first)."""
        cur, mart, root, version = self.cur, self.mart, self.root, self.target
        target = schema or definitions.MART_SCHEMA
        new = binding.create_mart(cur, version, target, options=deps.options_clause(root))
        declared = {index.name for index in version.indexes}
        kept = [i for i in root.indexes if i.name in declared]
        dropped = sorted(i.name for i in root.indexes if i.name not in declared)
        if dropped:
            log.warning("%s: indexes not declared by its version are not recreated: %s",
                        mart.name, ", ".join(dropped))
        deps.restore_attributes(cur, dataclasses.replace(root, indexes=kept), schema=schema,
                                comment=version.description or None,
                                columns=deps.columns(cur, new))
        self.mapping = {root.oid: new}
        return new

    def _rebuild_dependents(self, schema: str | None) -> None:
        """Each dependent from its saved definition, bottom-up, with its indexes and
        attributes, checked to read exactly what it read before (rebuilt ones mapped)."""
        cur = self.cur
        path = [schema, *self.path] if schema else self.path
        previous = deps.set_search_path(cur, path)
        try:
            for rel in self.dependents:
                try:
                    deps.create(cur, rel, schema)
                except psycopg2.Error as exc:
                    raise ReplaceError(
                        f"cannot rebuild {rel.schema}.{rel.name} on {self.mart.name} "
                        f"v{self.version}: {str(exc).strip().splitlines()[0]}; change it in "
                        "the same migration (drop it before, recreate it after)") from None
                new = deps.relation_oid(cur, schema or rel.schema, rel.name)[0]
                self.mapping[rel.oid] = new
                expected = {self.mapping.get(oid, oid) for oid in rel.reads}
                if deps.reads(cur, new) != expected:
                    raise ReplaceError(
                        f"the rebuilt {rel.schema}.{rel.name} would not read the same relations "
                        "as before (a name is shadowed on the search_path): use "
                        "side_by_side=False or qualify the names in its definition")
                now = deps.binds(cur, new)
                if now.keys() != rel.binds.keys():
                    other = sorted(set(now.values()) - set(rel.binds.values()))
                    raise ReplaceError(
                        f"the rebuilt {rel.schema}.{rel.name} would call "
                        f"{', '.join(other) or 'other objects'} instead of what it calls now "
                        "(an object planted on the search_path since it was created): drop or "
                        "move that object, or qualify the names in its definition; nothing "
                        "was changed")
                deps.create_indexes(cur, rel, schema)
                deps.restore_attributes(cur, rel, schema=schema)  # its owner, before it runs
                deps.populate(cur, rel, schema)
                if schema is None:
                    deps.restore_named_objects(cur, rel)
        finally:
            deps.restore_search_path(cur, previous)

    def _build_copies(self) -> None:
        names = [self.mart.name, *(d.name for d in self.dependents)]
        if len(set(names)) != len(names):
            raise ReplaceError(
                f"{self.mart.name}'s dependents include two relations of the same name in "
                "different schemas, which a side-by-side build cannot hold: use "
                "side_by_side=False")
        self._create_scratch()
        self._create_root(schema=SCRATCH_SCHEMA)
        self._rebuild_dependents(schema=SCRATCH_SCHEMA)
        self._analyze(schema=SCRATCH_SCHEMA)

    def _analyze(self, schema: str | None) -> None:
        """Fresh materialized views have no statistics; give the planner some at once."""
        targets = [sql.Identifier(schema or rel.schema, rel.name)
                   for rel in [self.root, *self.dependents] if rel.kind == "m"]
        self.cur.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(targets)))

    def _swap(self) -> None:
        cur = self.cur
        now = [oid for oid, _ in self._dependents(self.root.oid)]
        if sorted(now) != sorted(rel.oid for rel in self.dependents):
            raise ReplaceError(f"the views on {self.mart.name} changed during the build: run the "
                               "migration again")
        self._lock_and_drop()
        cur.execute(sql.SQL("ALTER MATERIALIZED VIEW {} SET SCHEMA {}").format(
            sql.Identifier(SCRATCH_SCHEMA, self.mart.name), sql.Identifier(definitions.MART_SCHEMA)))
        for rel in self.dependents:
            deps.set_schema(cur, rel, SCRATCH_SCHEMA)
        for rel in self.dependents:
            deps.restore_named_objects(cur, rel)
        cur.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(SCRATCH_SCHEMA)))
        self._register()

    def _register(self) -> None:
        """The new version is the migrated one, its checks with it."""
        self.cur.execute(in_project("UPDATE {project}.mart SET version = %s, migrated_at = now()"
                         " WHERE name = %s"), (self.version, self.mart.name))
        checks.install(self.cur, self.target)

    # -- locking -------------------------------------------------------------------------

    def _lock_and_drop(self) -> None:
        """Drop the dependents top-down and the old mart, each lock requested with
        lock_timeout and the whole step retried, so readers never queue for long behind a
        migration that is itself waiting."""
        cur = self.cur
        self.result.swap_started_at = time.time()
        started = time.perf_counter()
        cur.execute("SELECT current_setting('lock_timeout')")
        previous = cur.fetchone()[0]
        attempts = self.lock_retries + 1 if self.lock_timeout else 1
        for attempt in range(1, attempts + 1):
            self.result.lock_attempts = attempt
            cur.execute("SAVEPOINT bioloupe_views_swap")
            if self.lock_timeout:
                cur.execute("SELECT set_config('lock_timeout', %s, true)", (self.lock_timeout,))
            try:
                for rel in reversed(self.dependents):
                    deps.drop(cur, rel)
                checks.uninstall(cur, self.mart.name)
                deps.drop(cur, self.root)
            except psycopg2.errors.LockNotAvailable:
                cur.execute("ROLLBACK TO SAVEPOINT bioloupe_views_swap")
                if attempt == attempts:
                    raise ReplaceError(
                        f"could not lock {self.mart.name} and its dependents within "
                        f"{self.lock_timeout} in {attempts} attempts: a long query or a refresh "
                        "holds them; retry when it is done") from None
                time.sleep(min(0.05 * 2 ** attempt, 2.0))
                continue
            except psycopg2.errors.DependentObjectsStillExist as exc:
                detail = (exc.diag.message_detail or "").replace("\n", "; ")
                raise ReplaceError(
                    f"cannot replace {self.mart.name}: objects other than views depend on it "
                    f"({detail}); drop them in the migration before, recreate them after") from None
            cur.execute("RELEASE SAVEPOINT bioloupe_views_swap")
            break
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (previous,))
        self.result.lock_wait_seconds = time.perf_counter() - started

    # -- scratch schema ----------------------------------------------------------------

    def _create_scratch(self) -> None:
        self.cur.execute("SELECT to_regnamespace(%s) IS NOT NULL", (SCRATCH_SCHEMA,))
        if self.cur.fetchone()[0]:
            raise ReplaceError(
                f"schema {SCRATCH_SCHEMA} exists: an earlier side-by-side replacement was "
                f"interrupted; check it holds nothing you need, then DROP SCHEMA {SCRATCH_SCHEMA}"
                " CASCADE")
        self.cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCRATCH_SCHEMA)))
        self.scratch_created = True

    def _drop_scratch(self) -> None:
        """After a failure in autocommit mode, the build's committed copies go away."""
        if self.cur.connection.closed:
            return
        with contextlib.suppress(psycopg2.Error):
            self.cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(SCRATCH_SCHEMA)))
