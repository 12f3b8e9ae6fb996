-- The first object outside the project that depends on a mart (a user's view, materialized
-- view, function...), or NULL: `auto` swaps only marts that nothing outside depends on, so
-- its choice never touches a user's object.
CREATE FUNCTION bioloupe_views.outside_dependent(p_mart text)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                THEN CASE v.relkind WHEN 'v' THEN 'view ' ELSE 'materialized view ' END
                     || v.oid::pg_catalog.regclass::pg_catalog.text
                ELSE pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) END
    FROM bioloupe_views.managed_mart mm
    JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                               AND d.refobjid = mm.relid
    LEFT JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                                     AND r.oid = d.objid
    LEFT JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
    LEFT JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
    WHERE mm.name = p_mart
      AND d.classid NOT IN ('pg_catalog.pg_type'::pg_catalog.regclass,
                            'pg_catalog.pg_class'::pg_catalog.regclass)
      AND (v.oid IS NULL OR (v.oid <> mm.relid
           AND vn.nspname <> 'bioloupe_views_checks'
           AND vn.nspname NOT IN (SELECT st.schema_name FROM bioloupe_views.stage st)
           AND NOT EXISTS (SELECT 1 FROM bioloupe_views.managed_mart o WHERE o.relid = v.oid)))
    ORDER BY 1 LIMIT 1
$$;
