-- Create a copy of a view or materialized view from its live definition, bound through
-- p_path: the definition is printed with the marts' schema on the search_path (so a mart
-- is written by its bare name and nothing else changes), then parsed again with the given
-- stage schemas first, where a mart built aside takes the place of the live one. The copy
-- must then be bound exactly as the original is, marts aside (view_bindings()): a name
-- that would resolve to anything else stops the build, naming the object. Used for a
-- mart's build aside, built from the builds aside of the marts it reads, and for the copies
-- of its checks that audit it. Returns the copy's oid.
CREATE FUNCTION bioloupe_views.rebuild_view(
    p_relid oid, p_schema name, p_stages text, p_materialized boolean)
RETURNS oid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name name;
    v_options text;
    v_def text;
    v_copy oid;
    v_extra text;
    v_missing text;
BEGIN
    SELECT c.relname,
           CASE WHEN c.reloptions IS NULL THEN ''
                ELSE ' WITH (' || pg_catalog.array_to_string(c.reloptions, ', ') || ')' END
           || CASE WHEN c.reltablespace = 0 THEN ''
                   ELSE pg_catalog.format(' TABLESPACE %I', t.spcname) END
    INTO v_name, v_options
    FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace
    WHERE c.oid = p_relid;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true);
    v_def := pg_catalog.rtrim(pg_catalog.pg_get_viewdef(p_relid), E'; \n');
    PERFORM pg_catalog.set_config('search_path',
        'pg_catalog, ' || coalesce(p_stages || ', ', '') || 'public, pg_temp', true);
    IF p_materialized THEN
        EXECUTE pg_catalog.format('CREATE MATERIALIZED VIEW %I.%I%s AS %s WITH NO DATA',
                                  p_schema, v_name, v_options, v_def);
    ELSE
        EXECUTE pg_catalog.format('CREATE VIEW %I.%I AS %s', p_schema, v_name, v_def);
    END IF;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    v_copy := pg_catalog.format('%I.%I', p_schema, v_name)::pg_catalog.regclass::pg_catalog.oid;
    SELECT pg_catalog.string_agg(bioloupe_views.describe_binding(b), ', ') INTO v_extra
    FROM (SELECT bioloupe_views.view_bindings(v_copy) EXCEPT SELECT bioloupe_views.view_bindings(p_relid)) x(b);
    SELECT pg_catalog.string_agg(bioloupe_views.describe_binding(b), ', ') INTO v_missing
    FROM (SELECT bioloupe_views.view_bindings(p_relid) EXCEPT SELECT bioloupe_views.view_bindings(v_copy)) x(b);
    IF v_extra IS NOT NULL OR v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'the copy of % built aside would be bound to % instead of %: a name now resolves to another object; nothing was published',
            p_relid::pg_catalog.regclass, coalesce(v_extra, 'nothing more'), coalesce(v_missing, 'nothing less')
            USING HINT = 'run bioloupe-views doctor, which names objects planted on the marts'' path';
    END IF;
    RETURN v_copy;
END;
$$;
