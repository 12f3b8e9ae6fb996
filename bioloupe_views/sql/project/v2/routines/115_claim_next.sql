-- Claim the next mart of a run that is ready: pending, and every upstream mart of the same
-- run refreshed successfully. Called by every worker session of every client, each in its
-- own short transaction; SKIP LOCKED lets sessions claim side by side. First, dependents of
-- a mart that did not refresh are skipped (transitively): they would be built on stale
-- input. Returns the mart and 'claimed'; or NULL and 'wait' (marts still running or locked
-- by another claim); or NULL and 'done'.
CREATE FUNCTION bioloupe_views.claim_next(p_run uuid, OUT mart text, OUT state text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    LOOP
        UPDATE bioloupe_views.run_log l
        SET status = 'skipped', ended_at = pg_catalog.clock_timestamp(),
            error = 'upstream ' || up.failed || ' did not refresh'
        FROM (
            SELECT p.id, pg_catalog.string_agg(u.mart, ', ' ORDER BY u.mart) AS failed
            FROM bioloupe_views.run_log p
            JOIN bioloupe_views.mart_dependency d ON d.mart = p.mart
            JOIN bioloupe_views.run_log u ON u.run_id = p.run_id AND u.mart = d.depends_on
            WHERE p.run_id = p_run AND p.status = 'pending'
              AND u.status IN ('error', 'check_failed', 'skipped', 'cancelled')
            GROUP BY p.id
        ) up
        WHERE l.id = up.id;
        EXIT WHEN NOT FOUND;
    END LOOP;

    SELECT l.id, l.mart INTO v_id, mart
    FROM bioloupe_views.run_log l
    WHERE l.run_id = p_run AND l.status = 'pending'
      AND NOT EXISTS (
          SELECT 1
          FROM bioloupe_views.mart_dependency d
          JOIN bioloupe_views.run_log u ON u.run_id = l.run_id AND u.mart = d.depends_on
          WHERE d.mart = l.mart AND u.status <> 'success')
    ORDER BY l.position
    LIMIT 1
    FOR UPDATE OF l SKIP LOCKED;
    IF FOUND THEN
        UPDATE bioloupe_views.run_log
        SET status = 'running', pid = pg_catalog.pg_backend_pid(),
            started_at = pg_catalog.clock_timestamp()
        WHERE id = v_id;
        state := 'claimed';
    ELSIF EXISTS (SELECT 1 FROM bioloupe_views.run_log l
                  WHERE l.run_id = p_run AND l.status IN ('pending', 'running')) THEN
        state := 'wait';
    ELSE
        state := 'done';
    END IF;
END;
$$;
