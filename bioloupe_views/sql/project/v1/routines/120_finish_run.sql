CREATE FUNCTION bioloupe_views.finish_run(p_run uuid, p_status text, p_message text DEFAULT NULL)
RETURNS void
LANGUAGE sql AS $$
    UPDATE bioloupe_views.run
    SET ended_at = clock_timestamp(), status = p_status, message = p_message
    WHERE run_id = p_run
$$;
