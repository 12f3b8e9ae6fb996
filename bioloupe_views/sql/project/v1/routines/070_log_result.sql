-- Record one mart's outcome in the run log.
CREATE FUNCTION bioloupe_views.log_result(p_run uuid, p_trigger text, p_result jsonb)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO bioloupe_views.run_log
        (run_id, mart, started_at, ended_at, duration_seconds, mode, rows, status, error,
         trigger, checks)
    VALUES (
        p_run, p_result->>'mart',
        (p_result->>'started_at')::timestamptz, (p_result->>'ended_at')::timestamptz,
        extract(epoch FROM (p_result->>'ended_at')::timestamptz
                          - (p_result->>'started_at')::timestamptz),
        p_result->>'mode', (p_result->>'rows')::bigint, p_result->>'status',
        p_result->>'error', p_trigger, p_result->'checks');
$$;
