-- A run that did not start because another held the lock: recorded, nothing refreshed.
CREATE FUNCTION bioloupe_views.skip_run(p_trigger text, p_message text) RETURNS uuid
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO bioloupe_views.run (run_id, trigger, status, ended_at, message)
    VALUES (pg_catalog.gen_random_uuid(), p_trigger, 'skipped', pg_catalog.clock_timestamp(), p_message)
    RETURNING run_id
$$;
