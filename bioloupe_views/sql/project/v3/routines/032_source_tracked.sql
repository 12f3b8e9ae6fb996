-- Whether writes to a relation are logged to bioloupe_views.source_change: it is a plain
-- table with an always-enabled (ENABLE ALWAYS: replication and restores too) statement
-- trigger calling log_source_change() after INSERT, UPDATE, DELETE and TRUNCATE. Only plain
-- tables: a statement on a partition does not fire its parent's statement triggers. The
-- one definition for mart_inputs, doctor and track-sources.
CREATE FUNCTION bioloupe_views.source_tracked(p_relid oid)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_trigger t ON t.tgrelid = c.oid
        WHERE c.oid = p_relid AND c.relkind = 'r' AND t.tgenabled = 'A'
          AND t.tgfoid = 'bioloupe_views.log_source_change()'::pg_catalog.regprocedure
          AND t.tgtype::integer & 1 = 0              -- FOR EACH STATEMENT
          AND t.tgtype::integer & 60 = 60)           -- INSERT, DELETE, UPDATE, TRUNCATE
$$;
