-- A member of a swap group did not make it (p_mart; p_reason: its status in words, or the
-- swap's own error): the group is not
-- published. The other members built aside or not yet started are logged as p_status
-- (skipped: held back; error: the swap itself failed) with the reason; their builds aside
-- are dropped by clear_stages() once nobody reads them (a member still building reads its
-- upstream's: dropping it here would wait for that member, which waits for this group's
-- lock). A member still building finds out in publish_staged(). Returns the members held
-- back.
CREATE FUNCTION bioloupe_views.hold_back(p_run uuid, p_mart text, p_reason text,
                                         p_status text DEFAULT 'skipped')
RETURNS text[]
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_group text;
    v_held text[];
BEGIN
    SELECT l.swap_group INTO v_group FROM bioloupe_views.run_log l
    WHERE l.run_id = p_run AND l.mart = p_mart AND l.strategy = 'swap';
    IF v_group IS NULL THEN
        RETURN '{}';
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(1651470448, pg_catalog.hashtext(p_run::text || v_group));
    WITH held AS (
        UPDATE bioloupe_views.run_log l
        SET status = p_status, ended_at = pg_catalog.clock_timestamp(),
            started_at = coalesce(l.started_at, pg_catalog.clock_timestamp()),
            error = CASE WHEN p_status = 'error' THEN p_reason
                         ELSE pg_catalog.format('held back: %s (%s) of its swap group did not pass; the live marts keep their data',
                                                p_mart, p_reason) END
        WHERE l.run_id = p_run AND l.swap_group = v_group AND l.mart <> p_mart
          AND l.status IN ('staged', 'pending')
        RETURNING l.mart, l.stage_schema)
    SELECT pg_catalog.array_agg(h.mart) INTO v_held FROM held h;
    RETURN coalesce(v_held, '{}');
END;
$$;
