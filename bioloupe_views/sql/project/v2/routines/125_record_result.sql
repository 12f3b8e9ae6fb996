-- Record an outcome that the client decided after refresh_mart() could not write it (its
-- transaction was rolled back: an --atomic run that failed, a client cancel or a lost
-- worker connection). Only a mart still unfinished in the log, or one whose log row was
-- rolled back with it, is changed: a committed outcome is never overwritten.
CREATE FUNCTION bioloupe_views.record_result(
    p_run uuid, p_mart text, p_status text, p_error text DEFAULT NULL, p_result jsonb DEFAULT '{}')
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE bioloupe_views.run_log
    SET status = p_status, error = p_error,
        started_at = coalesce(started_at, pg_catalog.clock_timestamp()),
        ended_at = pg_catalog.clock_timestamp(),
        duration_seconds = extract(epoch FROM pg_catalog.clock_timestamp()
                                   - coalesce(started_at, pg_catalog.clock_timestamp())),
        mode = coalesce(p_result->>'mode', mode),
        rows = coalesce((p_result->>'rows')::bigint, rows),
        sqlstate = p_result->>'sqlstate',
        error_context = p_result->>'context',
        checks = coalesce(p_result->'checks', checks)
    WHERE run_id = p_run AND mart = p_mart AND status IN ('pending', 'running')
$$;
