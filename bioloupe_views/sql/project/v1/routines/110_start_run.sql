-- Start a run; call it holding the refresh lock. No other run can then be alive, so a run
-- still marked 'running' lost its session (connection dropped, backend terminated) before
-- it could finish: it is closed as an error first.
CREATE FUNCTION bioloupe_views.start_run(p_trigger text) RETURNS uuid
LANGUAGE sql AS $$
    UPDATE bioloupe_views.run
    SET status = 'error', ended_at = clock_timestamp(),
        message = 'abandoned: its session ended before the run finished'
    WHERE status = 'running';
    INSERT INTO bioloupe_views.run (run_id, trigger, status)
    VALUES (gen_random_uuid(), p_trigger, 'running')
    RETURNING run_id
$$;
