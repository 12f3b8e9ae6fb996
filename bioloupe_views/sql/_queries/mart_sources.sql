-- The relations each mart reads that are not marts: its source tables (and any foreign table
-- or materialized view this project does not manage). Read from the dependencies PostgreSQL
-- records for each view's rewrite rule, following plain views in between, exactly as
-- bioloupe_views.mart_dependency finds the mart-to-mart edges. Used by `bioloupe-views graph`.
WITH RECURSIVE reads(mart, relid) AS (
    SELECT mm.name, d.refobjid
    FROM bioloupe_views.managed_mart mm
    JOIN pg_rewrite r ON r.ev_class = mm.relid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> mm.relid
    UNION
    SELECT reads.mart, d.refobjid
    FROM reads
    JOIN pg_class v ON v.oid = reads.relid AND v.relkind = 'v'
    JOIN pg_rewrite r ON r.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
)
SELECT DISTINCT reads.mart, n.nspname AS schema, c.relname AS relation
FROM reads
JOIN pg_class c ON c.oid = reads.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind <> 'v'
  AND NOT EXISTS (SELECT 1 FROM bioloupe_views.managed_mart mm WHERE mm.relid = c.oid)
ORDER BY 1, 2, 3
