-- The relations that read any of the given live marts and must follow them through a swap:
-- everything whose rewrite rule depends on one of them, except the marts themselves and
-- what swaps keep aside (stage schemas).
CREATE FUNCTION bioloupe_views.swap_dependents(p_live oid[])
RETURNS TABLE (oid oid)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT v.oid
    FROM pg_catalog.pg_depend dep
    JOIN pg_catalog.pg_rewrite r ON dep.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                                AND r.oid = dep.objid
    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
    JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
    WHERE dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND dep.refobjid = ANY (p_live) AND v.oid <> ALL (p_live)
      AND n.nspname NOT IN (SELECT st.schema_name FROM bioloupe_views.stage st)
$$;
