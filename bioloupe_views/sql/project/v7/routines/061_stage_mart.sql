-- Build a claimed mart aside, for a swap: a schema of its own (registered in stage), the
-- live mart's definition bound as the live mart is, except that the marts it reads which
-- this run has built aside are read there (rebuild_view()); filled with the refresh
-- settings (refresh_setting) and parallel query allowed, since nobody reads it yet; then
-- the live mart's indexes (its own and any a user added), attributes (carry_attributes())
-- and fresh statistics. Returns its row count. Nothing live is touched, and every object is
-- created in the caller's transaction: if it rolls back, nothing is left.
-- SECURITY DEFINER: the build aside belongs to the project's role, as the marts do; only a
-- mart being swapped by a running run may be built.
CREATE FUNCTION bioloupe_views.stage_mart(p_run uuid, p_mart text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_log record;
    v_live oid;
    v_schema name;
    v_stages text;
    v_staged oid;
    v_def text;
    v_on text;
    v_rows bigint;
    s record;
BEGIN
    SELECT l.id, l.swap_group INTO v_log
    FROM bioloupe_views.run_log l JOIN bioloupe_views.run r ON r.run_id = l.run_id
    WHERE l.run_id = p_run AND l.mart = p_mart AND l.status = 'running'
      AND l.strategy = 'swap' AND r.status = 'running';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mart % is not being swapped by a running run %', p_mart, p_run
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT mm.relid INTO v_live FROM bioloupe_views.managed_mart mm WHERE mm.name = p_mart;
    v_schema := 'bioloupe_views_stage_'
                || pg_catalog.substr(pg_catalog.md5(pg_catalog.gen_random_uuid()::text), 1, 12);
    EXECUTE pg_catalog.format('CREATE SCHEMA %I', v_schema);
    INSERT INTO bioloupe_views.stage (schema_name, run_id, mart, kind)
    VALUES (v_schema, p_run, p_mart, 'stage');
    UPDATE bioloupe_views.run_log SET stage_schema = v_schema WHERE id = v_log.id;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(l.stage_schema), ', ' ORDER BY l.position)
    INTO v_stages
    FROM bioloupe_views.run_log l
    WHERE l.run_id = p_run AND l.swap_group = v_log.swap_group AND l.status = 'staged'
      AND l.stage_schema IS NOT NULL;
    v_staged := bioloupe_views.rebuild_view(v_live, v_schema, v_stages, true);
    PERFORM bioloupe_views.carry_attributes(v_live, v_staged);
    FOR s IN SELECT rs.name, rs.value FROM bioloupe_views.refresh_setting rs LOOP
        PERFORM pg_catalog.set_config(s.name, s.value, true);
    END LOOP;
    PERFORM pg_catalog.set_config('max_parallel_workers_per_gather',
        (SELECT ps.reset_val FROM pg_catalog.pg_settings ps
         WHERE ps.name = 'max_parallel_workers_per_gather'), true);
    EXECUTE pg_catalog.format('REFRESH MATERIALIZED VIEW %I.%I', v_schema, p_mart);
    v_on := pg_catalog.format(' ON public.%I USING ', p_mart);
    FOR s IN SELECT x.indexrelid FROM pg_catalog.pg_index x
             WHERE x.indrelid = v_live AND x.indisvalid ORDER BY x.indexrelid LOOP
        v_def := pg_catalog.pg_get_indexdef(s.indexrelid);
        IF pg_catalog.strpos(v_def, v_on) = 0 THEN
            RAISE EXCEPTION 'cannot copy index % of %: unexpected definition %',
                s.indexrelid::pg_catalog.regclass, p_mart, v_def;
        END IF;
        EXECUTE pg_catalog.overlay(v_def, pg_catalog.format(' ON %I.%I USING ', v_schema, p_mart),
                                   pg_catalog.strpos(v_def, v_on), pg_catalog.length(v_on));
    END LOOP;
    EXECUTE pg_catalog.format('ANALYZE %I.%I', v_schema, p_mart);
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %I.%I', v_schema, p_mart) INTO v_rows;
    RETURN v_rows;
END;
$$;
