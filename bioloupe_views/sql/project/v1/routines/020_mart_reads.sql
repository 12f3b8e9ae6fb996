-- Every relation each mart reads, from the catalog: a view's rewrite rule depends on every
-- relation its query reads. Plain views in between are followed (and listed), so a mart
-- reading a view that reads another mart still reads that mart. This is the only record of
-- the lineage: the dependency order below and `bioloupe-views graph` both come from it.
CREATE VIEW bioloupe_views.mart_reads AS
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
SELECT DISTINCT mart, relid FROM reads;
