-- Run a mart's checks against its build aside, before anything is published: each of its
-- check views (and the scans they share, fast_checks) is copied into the mart's stage
-- schema from its live definition, reading the builds aside of this run's swap group where
-- the live check reads those marts (rebuild_view(), bound exactly as the live check is),
-- then checks_in() runs them there: the same checks, results and publish rule
-- (run_checks().blocks) as a concurrent refresh's audit. SECURITY DEFINER, because the
-- stage belongs to the project's role; only a staged mart of a running run is audited.
CREATE FUNCTION bioloupe_views.audit_staged(p_run uuid, p_mart text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_log record;
    v_stages text;
    v_live oid;
    v_checks jsonb;
    c record;
BEGIN
    SELECT l.stage_schema, l.swap_group INTO v_log
    FROM bioloupe_views.run_log l JOIN bioloupe_views.run r ON r.run_id = l.run_id
    WHERE l.run_id = p_run AND l.mart = p_mart AND l.status = 'running'
      AND l.strategy = 'swap' AND l.stage_schema IS NOT NULL AND r.status = 'running';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mart % has no build aside in a running run %', p_mart, p_run
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(l.stage_schema), ', '
                                 ORDER BY l.mart <> p_mart, l.position)
    INTO v_stages
    FROM bioloupe_views.run_log l
    WHERE l.run_id = p_run AND l.swap_group = v_log.swap_group AND l.stage_schema IS NOT NULL
      AND (l.status = 'staged' OR l.mart = p_mart);
    FOR c IN SELECT DISTINCT x.relation
             FROM bioloupe_views.mart_check mc,
             LATERAL (VALUES (mc.relation), (mc.batch_relation), (mc.implied_guard_relation)) x(relation)
             WHERE mc.mart = p_mart AND x.relation IS NOT NULL LOOP
        v_live := pg_catalog.to_regclass(pg_catalog.format('bioloupe_views_checks.%I', c.relation));
        IF v_live IS NOT NULL THEN
            PERFORM bioloupe_views.rebuild_view(v_live, v_log.stage_schema, v_stages, false);
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(k)), '[]') INTO v_checks
    FROM bioloupe_views.checks_in(p_mart, v_log.stage_schema, v_log.stage_schema) k;
    RETURN v_checks;
END;
$$;
