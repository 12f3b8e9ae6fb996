-- Drop what swaps leave once nobody needs it: the retired marts of a published group, the
-- builds aside of marts that are done (held back, failed), and everything of a run that is
-- no longer running (a client killed mid-build, a server stopped mid-run). Called after
-- each publish, by finish_run() and by start_run(), so the next run always starts by
-- clearing whatever an earlier one left. A retired mart still read by a query that began
-- before its swap is left for the next call (its drop waits at most 1s).
CREATE FUNCTION bioloupe_views.clear_stages()
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    v_dropped integer := 0;
BEGIN
    PERFORM pg_catalog.set_config('lock_timeout', '1s', true);
    FOR s IN SELECT st.schema_name FROM bioloupe_views.stage st
             LEFT JOIN bioloupe_views.run r ON r.run_id = st.run_id
             WHERE r.status IS DISTINCT FROM 'running'
                OR (st.kind = 'stage' AND NOT EXISTS (
                        SELECT 1 FROM bioloupe_views.run_log l
                        WHERE l.run_id = st.run_id AND l.mart = st.mart
                          AND l.status IN ('pending', 'running', 'staged')))
                OR (st.kind = 'retired' AND NOT EXISTS (
                        SELECT 1 FROM bioloupe_views.run_log l
                        WHERE l.run_id = st.run_id AND l.swap_group = st.mart
                          AND l.status IN ('pending', 'running', 'staged')))
             ORDER BY st.created_at
             FOR UPDATE OF st SKIP LOCKED LOOP
        IF bioloupe_views.drop_stage(s.schema_name) THEN
            v_dropped := v_dropped + 1;
        END IF;
    END LOOP;
    RETURN v_dropped;
END;
$$;
