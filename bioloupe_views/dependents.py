"""What depends on a materialized view, captured so it can be dropped and rebuilt faithfully.

PostgreSQL cannot CREATE OR REPLACE a materialized view, and dropping one drops (or, without
CASCADE, refuses to drop) every view that reads it. Replacing a mart therefore means: find
every view and materialized view above it, transitively, whoever manages them; save what
the catalog knows about each (definition, kind, owner, storage options, populated or not,
indexes, grants, comments, column defaults, triggers, rules, extended statistics); drop them
top-down; and recreate them bottom-up. This module does the finding, the saving and the
recreating; replace.py decides when.

Definitions are deparsed with pg_get_viewdef under a search_path made of the schemas of the
relations being rebuilt (`capture_path`), so a reference to one of them is written unqualified
and resolves, when the text is executed again, to whatever relation of that name the
search_path then finds first: the recreated one, or a side-by-side copy in a schema put in
front. `reads()` checks the result: a rebuilt view must read exactly what the old one read,
with rebuilt relations mapped to their replacements.

Not kept: security labels, per-column statistics targets and storage settings, tablespaces
and the grantor of a grant (grants are re-issued by the migration's user).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg2 import sql

from . import definitions

KIND_KEYWORD = {"m": "MATERIALIZED VIEW", "v": "VIEW"}
PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER",
              "MAINTAIN"}

_DEPENDENTS_SQL = """
WITH RECURSIVE dep(oid, depth) AS (
    SELECT r.ev_class, 1
    FROM pg_depend d
    JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                     AND r.rulename = '_RETURN'
    WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %(root)s
      AND r.ev_class <> %(root)s
    UNION
    SELECT r.ev_class, dep.depth + 1
    FROM dep
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = dep.oid
    JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                     AND r.rulename = '_RETURN'
    WHERE r.ev_class <> dep.oid
)
SELECT oid, max(depth) FROM dep GROUP BY oid ORDER BY max(depth), oid
"""

_RELATION_SQL = """
SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), coalesce(c.reloptions, '{}'),
       c.relispopulated, obj_description(c.oid, 'pg_class'), c.relacl IS NULL,
       format('%%I.%%I', n.nspname, c.relname),
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = %s
"""

_BINDS_SQL = """
SELECT DISTINCT d.refclassid::regclass::text, d.refobjid, pg_describe_object(d.refclassid, d.refobjid, 0)
FROM pg_rewrite r
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                AND d.refclassid <> 'pg_class'::regclass
WHERE r.ev_class = %s AND r.rulename = '_RETURN'
"""

_READS_SQL = """
SELECT DISTINCT d.refobjid
FROM pg_rewrite r
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                AND d.refclassid = 'pg_class'::regclass
WHERE r.ev_class = %s AND r.rulename = '_RETURN' AND d.refobjid <> r.ev_class
"""


@dataclass(frozen=True)
class Grant:
    grantee: str | None      # None is PUBLIC
    privilege: str
    grantable: bool
    column: str | None = None


@dataclass(frozen=True)
class IndexDef:
    name: str
    definition: str          # pg_get_indexdef
    comment: str | None
    clustered: bool


@dataclass
class Relation:
    """One view or materialized view as the catalog describes it."""

    oid: int
    schema: str
    name: str
    kind: str                # 'm' or 'v'
    owner: str
    options: list[str]       # reloptions, "key=value"
    populated: bool
    comment: str | None
    default_acl: bool        # relacl IS NULL: the owner's implicit privileges only
    qualified: str           # schema.name as PostgreSQL quotes it (pg_get_indexdef's form)
    definition: str | None   # pg_get_viewdef, under the capture search_path
    depth: int = 0           # longest path from the replaced view; 0 for the view itself
    column_comments: dict[str, str] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    defaults: dict[str, str] = field(default_factory=dict)
    indexes: list[IndexDef] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    statistics: list[str] = field(default_factory=list)
    reads: set[int] = field(default_factory=set)
    binds: dict[tuple[str, int], str] = field(default_factory=dict)  # functions, operators...

    @property
    def keyword(self) -> sql.SQL:
        return sql.SQL(KIND_KEYWORD[self.kind])

    def ident(self, schema: str | None = None) -> sql.Identifier:
        return sql.Identifier(schema or self.schema, self.name)


def relation_oid(cur, schema: str, name: str) -> tuple[int, str] | None:
    """(oid, relkind) of schema.name, or None."""
    cur.execute("SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                (schema, name))
    return cur.fetchone()


def find(cur, root: int) -> list[tuple[int, int]]:
    """(oid, depth) of every view and materialized view reading `root`, transitively, in an
    order where each comes after everything it reads (depth is the longest path)."""
    cur.execute(_DEPENDENTS_SQL, {"root": root})
    return cur.fetchall()


def set_search_path(cur, schemas: list[str]) -> str:
    """Set this transaction's search_path to `schemas` (plus pg_temp last, so temporary
    tables never shadow); returns the previous setting for `restore_search_path`."""
    cur.execute("SELECT current_setting('search_path')")
    previous = cur.fetchone()[0]
    path = sql.SQL(", ").join([*(sql.Identifier(s) for s in schemas), sql.Identifier("pg_temp")])
    cur.execute("SELECT set_config('search_path', %s, true)", (path.as_string(cur),))
    return previous


def restore_search_path(cur, previous: str) -> None:
    cur.execute("SELECT set_config('search_path', %s, true)", (previous,))


def capture_path(cur, oids: list[int]) -> list[str]:
    """The schemas of these relations (the replaced view first), without repeats."""
    cur.execute("SELECT n.nspname FROM unnest(%s::oid[]) WITH ORDINALITY AS r(oid, pos)"
                " JOIN pg_class c ON c.oid = r.oid JOIN pg_namespace n ON n.oid = c.relnamespace"
                " ORDER BY r.pos", (oids,))
    schemas: list[str] = []
    for (schema,) in cur.fetchall():
        if schema not in schemas:
            schemas.append(schema)
    return schemas


def capture(cur, oid: int, depth: int = 0) -> Relation:
    """Everything needed to rebuild relation `oid`. Call under the capture search_path."""
    cur.execute(_RELATION_SQL, (oid,))
    (schema, name, kind, owner, options, populated, comment, default_acl, qualified,
     definition) = cur.fetchone()
    rel = Relation(oid, schema, name, kind, owner, list(options), populated, comment,
                   default_acl, qualified, definition and definition.rstrip().rstrip(";"), depth)
    cur.execute("SELECT a.attname, d.description FROM pg_attribute a JOIN pg_description d"
                " ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass"
                " AND d.objsubid = a.attnum"
                " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped", (oid,))
    rel.column_comments = dict(cur.fetchall())
    cur.execute("SELECT CASE WHEN x.grantee <> 0 THEN pg_get_userbyid(x.grantee) END,"
                " x.privilege_type, x.is_grantable, NULL FROM pg_class c, aclexplode(c.relacl) x"
                " WHERE c.oid = %s"
                " UNION ALL"
                " SELECT CASE WHEN x.grantee <> 0 THEN pg_get_userbyid(x.grantee) END,"
                " x.privilege_type, x.is_grantable, a.attname"
                " FROM pg_attribute a, aclexplode(a.attacl) x"
                " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped", (oid, oid))
    rel.grants = [Grant(*row) for row in cur.fetchall()]
    cur.execute("SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d"
                " JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
                " WHERE d.adrelid = %s", (oid,))
    rel.defaults = dict(cur.fetchall())
    cur.execute("SELECT i.relname, pg_get_indexdef(i.oid), obj_description(i.oid, 'pg_class'),"
                " x.indisclustered FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                " WHERE x.indrelid = %s ORDER BY i.relname", (oid,))
    rel.indexes = [IndexDef(*row) for row in cur.fetchall()]
    cur.execute("SELECT pg_get_triggerdef(oid) FROM pg_trigger"
                " WHERE tgrelid = %s AND NOT tgisinternal ORDER BY tgname", (oid,))
    rel.triggers = [row[0] for row in cur.fetchall()]
    cur.execute("SELECT pg_get_ruledef(oid) FROM pg_rewrite"
                " WHERE ev_class = %s AND rulename <> '_RETURN' ORDER BY rulename", (oid,))
    rel.rules = [row[0] for row in cur.fetchall()]
    cur.execute("SELECT pg_get_statisticsobjdef(oid) FROM pg_statistic_ext"
                " WHERE stxrelid = %s ORDER BY stxname", (oid,))
    rel.statistics = [row[0] for row in cur.fetchall()]
    rel.reads = reads(cur, oid)
    rel.binds = binds(cur, oid)
    return rel


def reads(cur, oid: int) -> set[int]:
    """The relations a view's query reads, from its rewrite rule's dependencies."""
    cur.execute(_READS_SQL, (oid,))
    return {row[0] for row in cur.fetchall()}


def binds(cur, oid: int) -> dict[tuple[str, int], str]:
    """Everything but relations that a view's query is bound to (functions, aggregates,
    operators, types, collations), as (catalog, oid) -> description. A rebuilt view must be
    bound to the same objects: deparsed text re-read under another search_path could pick
    up a function some role has planted since."""
    cur.execute(_BINDS_SQL, (oid,))
    return {(classid, objid): text for classid, objid, text in cur.fetchall()}


def options_clause(rel: Relation) -> sql.Composable:
    if not rel.options:
        return sql.SQL("")
    items = []
    for option in rel.options:
        key, _, value = option.partition("=")
        items.append(sql.SQL("{} = {}").format(
            sql.SQL(".").join(sql.Identifier(part) for part in key.split(".")),
            sql.Literal(value)))
    return sql.SQL(" WITH ({})").format(sql.SQL(", ").join(items))


def create(cur, rel: Relation, schema: str | None = None) -> None:
    """CREATE the relation from its saved definition, empty, in `schema` (for a side-by-side
    copy) or its own. Call under the capture search_path. A materialized view is populated
    by `populate` once it has its owner back: its query is the owner's code and runs with
    the owner's rights, never the migration's."""
    cur.execute(definitions.create_view_statement(
        rel.ident(schema), rel.definition, materialized=rel.kind == "m",
        options=options_clause(rel), with_data=False if rel.kind == "m" else None))


def populate(cur, rel: Relation, schema: str | None = None) -> None:
    """Fill a rebuilt materialized view that was populated before. REFRESH runs its query
    as the view's owner, in a security-restricted operation (no SET ROLE, no RESET ROLE), so
    whatever the owner's query calls gets the owner's rights and no more."""
    if rel.kind == "m" and rel.populated:
        cur.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(rel.ident(schema)))


def create_indexes(cur, rel: Relation, schema: str | None = None) -> None:
    """Recreate the saved indexes, on the copy in `schema` when given (same index names: an
    index lives in its table's schema, and moves with it on SET SCHEMA)."""
    for index in rel.indexes:
        definition = index.definition
        if schema is not None:
            token = f" ON {rel.qualified} USING "
            if definition.count(token) != 1:
                raise ValueError(f"cannot retarget index {index.name}: {definition}")
            target = sql.Identifier(schema, rel.name).as_string(cur)
            definition = definition.replace(token, f" ON {target} USING ")
        cur.execute(definition)


def drop(cur, rel: Relation) -> None:
    """DROP without CASCADE: anything we did not capture (a function, a rule on a table)
    makes the drop fail instead of silently disappearing."""
    cur.execute(sql.SQL("DROP {} {}").format(rel.keyword, rel.ident()))


def set_schema(cur, rel: Relation, from_schema: str) -> None:
    cur.execute(sql.SQL("ALTER {} {} SET SCHEMA {}").format(
        rel.keyword, rel.ident(from_schema), sql.Identifier(rel.schema)))


def restore_attributes(cur, rel: Relation, schema: str | None = None,
                       comment: str | None = None, columns: set[str] | None = None) -> None:
    """Owner, grants, comments (relation, columns, indexes), column defaults and the
    clustering index, on the relation in `schema` (default: its own). Everything here names
    the relation, not its definition, so it can be applied to a copy before a swap.
    `comment` overrides the saved comment; `columns` limits column-level items to the
    columns that still exist (the replaced view's new version may have dropped some)."""
    ident = rel.ident(schema)
    cur.execute("SELECT current_user")
    if cur.fetchone()[0] != rel.owner:
        cur.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(
            rel.keyword, ident, sql.Identifier(rel.owner)))
    _restore_grants(cur, rel, ident, columns)
    comment = comment if comment is not None else rel.comment
    if comment is not None:
        cur.execute(sql.SQL("COMMENT ON {} {} IS {}").format(
            rel.keyword, ident, sql.Literal(comment)))
    for column, text in rel.column_comments.items():
        if columns is None or column in columns:
            cur.execute(sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                ident, sql.Identifier(column), sql.Literal(text)))
    for column, expression in rel.defaults.items():
        if columns is None or column in columns:
            cur.execute(sql.SQL("ALTER {} {} ALTER COLUMN {} SET DEFAULT {}").format(
                rel.keyword, ident, sql.Identifier(column), sql.SQL(expression)))
    for index in rel.indexes:
        index_ident = sql.Identifier(schema or rel.schema, index.name)
        if index.comment is not None:
            cur.execute(sql.SQL("COMMENT ON INDEX {} IS {}").format(
                index_ident, sql.Literal(index.comment)))
        if index.clustered:
            cur.execute(sql.SQL("ALTER {} {} CLUSTER ON {}").format(
                rel.keyword, ident, sql.Identifier(index.name)))


def _restore_grants(cur, rel: Relation, ident: sql.Identifier, columns: set[str] | None) -> None:
    """Make the new relation's privileges the saved ones: revoke what its creation gave
    (default privileges included), then grant the saved entries, table and column level."""
    if not rel.default_acl:
        cur.execute("SELECT DISTINCT CASE WHEN x.grantee <> 0 THEN pg_get_userbyid(x.grantee) END"
                    " FROM pg_class c, aclexplode(c.relacl) x WHERE c.oid = %s::regclass",
                    (ident.as_string(cur),))
        for (grantee,) in cur.fetchall():
            cur.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(ident, _role(grantee)))
        if not any(g.column is None for g in rel.grants):
            # relacl was '{}': even the owner's own privileges had been revoked.
            cur.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(ident, _role(rel.owner)))
    for grant in rel.grants:
        if grant.privilege not in PRIVILEGES:
            raise ValueError(f"unknown privilege {grant.privilege} on {rel.qualified}")
        if grant.column is None and rel.default_acl:
            continue
        if grant.column is not None and columns is not None and grant.column not in columns:
            continue
        target = (sql.SQL(" ({})").format(sql.Identifier(grant.column))
                  if grant.column is not None else sql.SQL(""))
        cur.execute(sql.SQL("GRANT {privilege}{target} ON {ident} TO {role}{option}").format(
            privilege=sql.SQL(grant.privilege), target=target, ident=ident,
            role=_role(grant.grantee),
            option=sql.SQL(" WITH GRANT OPTION" if grant.grantable else "")))


def _role(name: str | None) -> sql.Composable:
    return sql.SQL("PUBLIC") if name is None else sql.Identifier(name)


def restore_named_objects(cur, rel: Relation) -> None:
    """Triggers, rules and extended statistics: their saved DDL names the relation, so they
    are recreated once it has its real name again."""
    for statement in [*rel.triggers, *rel.rules, *rel.statistics]:
        cur.execute(statement)


def columns(cur, oid: int) -> set[str]:
    cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0"
                " AND NOT attisdropped", (oid,))
    return {row[0] for row in cur.fetchall()}
