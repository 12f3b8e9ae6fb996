-- Drop one registered stage or retired schema, object by object and never with CASCADE: a
-- view some role built on a retired mart in the meantime stops the drop (the schema stays
-- registered and is tried again) instead of being dropped with it. Views first, then the
-- materialized views, downstream first. Returns whether the schema is gone.
CREATE FUNCTION bioloupe_views.drop_stage(p_schema name)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    v_left integer;
    v_before integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM bioloupe_views.stage st WHERE st.schema_name = p_schema) THEN
        RAISE EXCEPTION 'schema % is not a stage of bioloupe-views', p_schema
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_before := -1;
    LOOP
        SELECT pg_catalog.count(*) INTO v_left FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = p_schema AND c.relkind IN ('v', 'm');
        EXIT WHEN v_left = 0 OR v_left = v_before;
        v_before := v_left;
        FOR o IN SELECT c.oid, c.relkind FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = p_schema AND c.relkind IN ('v', 'm')
                 ORDER BY c.relkind DESC, c.oid DESC LOOP
            BEGIN
                EXECUTE pg_catalog.format('DROP %s %s',
                    CASE o.relkind WHEN 'v' THEN 'VIEW' ELSE 'MATERIALIZED VIEW' END,
                    o.oid::pg_catalog.regclass);
            EXCEPTION WHEN dependent_objects_still_exist OR lock_not_available THEN
                NULL;
            END;
        END LOOP;
    END LOOP;
    IF v_left > 0 THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I', p_schema);
    DELETE FROM bioloupe_views.stage WHERE schema_name = p_schema;
    RETURN true;
END;
$$;
