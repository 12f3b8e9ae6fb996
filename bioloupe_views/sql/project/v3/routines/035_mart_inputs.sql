-- Every relation each mart's refresh depends on, other than views and the mart itself: what
-- its query reads (mart_reads) and what its installed checks read (their views in
-- bioloupe_views_checks), following plain views down to tables. `upstream` names the mart
-- when the relation is one; `tracked` says whether writes to a source are logged
-- (source_tracked(), bioloupe-views track-sources).
CREATE VIEW bioloupe_views.mart_inputs AS
WITH RECURSIVE reads(mart, relid) AS (
    SELECT x.mart, x.relid
    FROM (
        SELECT mr.mart, mr.relid FROM bioloupe_views.mart_reads mr
        UNION
        SELECT mc.mart, d.refobjid
        FROM bioloupe_views.mart_check mc
        JOIN pg_catalog.pg_namespace n ON n.nspname = 'bioloupe_views_checks'
        JOIN pg_catalog.pg_class v ON v.relnamespace = n.oid AND v.relname = mc.relation
        JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.oid
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                                   AND d.objid = r.oid
                                   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                   AND d.refobjid <> v.oid
    ) x
    UNION
    SELECT reads.mart, d.refobjid
    FROM reads
    JOIN pg_catalog.pg_class v ON v.oid = reads.relid AND v.relkind = 'v'
    JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.oid
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                               AND d.objid = r.oid
                               AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                               AND d.refobjid <> v.oid
)
SELECT DISTINCT reads.mart, reads.relid,
       pg_catalog.format('%I.%I', n.nspname, c.relname) AS relation,
       up.name AS upstream,
       up.name IS NULL AND bioloupe_views.source_tracked(c.oid) AS tracked
FROM reads
JOIN pg_catalog.pg_class c ON c.oid = reads.relid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN bioloupe_views.managed_mart self ON self.name = reads.mart
LEFT JOIN bioloupe_views.managed_mart up ON up.relid = c.oid
WHERE c.relkind <> 'v' AND c.oid <> self.relid
  AND n.nspname NOT IN ('pg_catalog', 'information_schema');
