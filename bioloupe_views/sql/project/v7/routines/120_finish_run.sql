-- Close a run: marts never started are recorded as cancelled (the client stopped), marts
-- whose worker session is gone as errors; the run's status follows from its marts:
-- success when all succeeded or were unchanged (a --changed-only run), cancelled when any was cancelled, else error.
-- A mart still waiting aside for a swap is an error (its group was never published), and
-- what swaps left aside is dropped (clear_stages()).
CREATE FUNCTION bioloupe_views.finish_run(p_run uuid, p_message text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE bioloupe_views.run_log
    SET status = 'cancelled', ended_at = pg_catalog.clock_timestamp(),
        error = coalesce(p_message, 'not started: the run stopped before it')
    WHERE run_id = p_run AND status = 'pending';
    UPDATE bioloupe_views.run_log l
    SET status = 'error', ended_at = pg_catalog.clock_timestamp(),
        error = 'abandoned: its session ended before the mart finished'
    WHERE l.run_id = p_run AND l.status = 'running'
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = l.pid);
    UPDATE bioloupe_views.run_log l
    SET status = 'error', ended_at = pg_catalog.clock_timestamp(),
        error = 'built aside, but its swap group was never published: '
                || coalesce(p_message, 'the run ended first')
    WHERE l.run_id = p_run AND l.status = 'staged';
    SELECT CASE WHEN pg_catalog.bool_and(l.status IN ('success', 'unchanged')) IS NOT FALSE THEN 'success'
                WHEN pg_catalog.bool_or(l.status = 'cancelled') THEN 'cancelled'
                ELSE 'error' END
    INTO v_status
    FROM bioloupe_views.run_log l WHERE l.run_id = p_run;
    UPDATE bioloupe_views.run
    SET ended_at = pg_catalog.clock_timestamp(), status = v_status, message = p_message
    WHERE run_id = p_run;
    PERFORM bioloupe_views.clear_stages();
    RETURN v_status;
END;
$$;
