-- The in-database refresh, for pg_cron: `CALL bioloupe_views.refresh_all()`. Same order,
-- modes, checks, lock and run log as `refresh-views`: each mart is refreshed and audited in
-- its own transaction, rolled back when an error-severity check fails, and its dependents
-- are skipped. A run that finds the lock taken records itself as skipped and does nothing,
-- so pg_cron's queued late runs are harmless. pg_cron commits inside a procedure only when
-- the job's command is this single CALL.
CREATE PROCEDURE bioloupe_views.refresh_all(
    p_marts text[] DEFAULT NULL,
    p_concurrently boolean DEFAULT true,
    p_checks boolean DEFAULT true,
    p_trigger text DEFAULT 'pg_cron')
LANGUAGE plpgsql AS $$
DECLARE
    v_run uuid;
    v_mart text;
    v_result jsonb;
    v_blocked text[] := '{}';
    v_failed integer := 0;
    v_order text[];
BEGIN
    IF NOT bioloupe_views.try_refresh_lock() THEN
        INSERT INTO bioloupe_views.run (run_id, trigger, status, ended_at, message)
        VALUES (gen_random_uuid(), p_trigger, 'skipped', clock_timestamp(),
                'another refresh held the lock');
        COMMIT;
        RAISE NOTICE 'bioloupe_views: another refresh is running; this run is skipped';
        RETURN;
    END IF;
    v_run := bioloupe_views.start_run(p_trigger);
    COMMIT;
    -- Read the order up front: the loop commits and rolls back, which a query loop may not.
    SELECT coalesce(array_agg(o.mart ORDER BY o.level, o.mart), '{}') INTO v_order
    FROM bioloupe_views.refresh_order o
    WHERE p_marts IS NULL OR o.mart = ANY (p_marts);
    FOREACH v_mart IN ARRAY v_order
    LOOP
        IF EXISTS (SELECT 1 FROM bioloupe_views.mart_dependency d
                   WHERE d.mart = v_mart AND d.depends_on = ANY (v_blocked)) THEN
            v_result := jsonb_build_object('mart', v_mart, 'status', 'skipped',
                'error', 'skipped: an upstream mart failed');
        ELSE
            BEGIN
                v_result := bioloupe_views.refresh_mart(v_mart, p_concurrently, p_checks);
            EXCEPTION WHEN OTHERS THEN
                v_result := jsonb_build_object('mart', v_mart, 'status', 'error',
                    'error', SQLERRM, 'ended_at', clock_timestamp());
            END;
        END IF;
        IF v_result->>'status' = 'success' THEN
            COMMIT;
        ELSE
            ROLLBACK;
            v_blocked := v_blocked || v_mart;
            v_failed := v_failed + 1;
        END IF;
        PERFORM bioloupe_views.log_result(v_run, p_trigger, v_result);
        COMMIT;
    END LOOP;
    PERFORM bioloupe_views.finish_run(v_run, CASE WHEN v_failed = 0 THEN 'success' ELSE 'error' END);
    PERFORM bioloupe_views.release_refresh_lock();
    COMMIT;
END;
$$;
