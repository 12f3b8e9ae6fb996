-- One binding of view_bindings() (041), as a person reads it.
CREATE FUNCTION bioloupe_views.describe_binding(p_binding text)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.split_part(p_binding, ':', 1) = 'mart'
                THEN 'mart ' || pg_catalog.split_part(p_binding, ':', 2)
                ELSE pg_catalog.pg_describe_object(pg_catalog.split_part(p_binding, ':', 1)::oid,
                                                   pg_catalog.split_part(p_binding, ':', 2)::oid,
                                                   pg_catalog.split_part(p_binding, ':', 3)::integer) END
$$;
