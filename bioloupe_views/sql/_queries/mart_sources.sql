-- The relations each mart reads that are not marts: its source tables (and any foreign table
-- or materialized view this project does not manage), from bioloupe_views.mart_reads, the
-- same catalog lineage the refresh order uses. Read by mart_graph.sources(): `graph` and the
-- source: selectors.
SELECT DISTINCT r.mart, n.nspname AS schema, c.relname AS relation
FROM bioloupe_views.mart_reads r
JOIN pg_class c ON c.oid = r.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind <> 'v'
  AND NOT EXISTS (SELECT 1 FROM bioloupe_views.managed_mart mm WHERE mm.relid = c.oid)
ORDER BY 1, 2, 3
