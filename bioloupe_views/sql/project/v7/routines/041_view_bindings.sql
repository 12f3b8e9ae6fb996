-- What a view or materialized view is bound to, one text per dependency of its query
-- (pg_depend of its rewrite rule), with every mart written by name: a live mart in public,
-- its build aside in a stage schema and its retired copy all read 'mart:<name>'. Two views
-- with the same set read the same things, the marts aside, which is how a build aside is
-- checked to be bound exactly as the live mart is, and a view re-pointed by a swap to read
-- what it read before.
CREATE FUNCTION bioloupe_views.view_bindings(p_relid oid)
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT CASE
        WHEN d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND m.name IS NOT NULL
             AND (n.nspname = 'public'
                  OR n.nspname IN (SELECT st.schema_name FROM bioloupe_views.stage st))
            THEN pg_catalog.format('mart:%s:%s', m.name, d.refobjsubid)
        ELSE pg_catalog.format('%s:%s:%s', d.refclassid::oid, d.refobjid, d.refobjsubid) END
    FROM pg_catalog.pg_rewrite r
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                               AND d.objid = r.oid AND d.deptype = 'n'
    LEFT JOIN pg_catalog.pg_class c ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                   AND c.oid = d.refobjid
    LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN bioloupe_views.mart m ON m.name = c.relname AND c.relkind = 'm'
    WHERE r.ev_class = p_relid
      AND NOT (d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = p_relid)
$$;

