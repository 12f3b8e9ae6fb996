-- The marts' source tables and whether their writes are logged for --changed-only: the
-- contract's tables in the source schema, and whatever else the marts or their checks read
-- that is not a mart (bioloupe_views.mart_inputs, the catalog lineage). `trackable`: only a
-- plain table takes the statement trigger (see bioloupe_views.source_tracked()); `installed`:
-- it has the trigger by name, in whatever state.
SELECT n.nspname AS schema, c.relname AS relation, c.relkind::text AS kind,
       c.relkind = 'r' AS trackable,
       {project}.source_tracked(c.oid) AS tracked,
       EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
               WHERE t.tgrelid = c.oid AND t.tgname = %(trigger)s) AS installed
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname = %(schema)s AND c.relname = ANY (%(contract)s) AND c.relkind <> 'v')
   OR c.oid IN (SELECT i.relid FROM {project}.mart_inputs i WHERE i.upstream IS NULL)
ORDER BY 1, 2
