-- Claim the next mart of a run that is ready: pending, every upstream mart of the same
-- run refreshed successfully, and every mart of the run that its checks read and that comes
-- before it in the run's order (start_run() puts those first: refresh_priority) finished,
-- however it went. So a mart's audit reads the rows published in this run, and its
-- changed-only snapshot comes after them: the next --changed-only run does not refresh it
-- again because a mart its checks read was published after it. Only earlier marts are
-- waited for, so checks that read each other's marts can never wait on each other. Called by every worker session of every client, each in its
-- own short transaction; SKIP LOCKED lets sessions claim side by side. First, dependents of
-- a mart that did not refresh are skipped (transitively): they would be built on stale
-- input. Returns the mart and 'claimed'; or NULL and 'wait' (marts still running or locked
-- by another claim); or NULL and 'done'.
-- In a run with the changed_only option, a ready mart that mart_change() finds unchanged is
-- logged 'unchanged' (with the time of its last refresh) instead of claimed, and the next
-- one is tried; a claimed mart's log row says why it is refreshed. An unchanged mart counts
-- as refreshed for its dependents' readiness, not as a change.
CREATE FUNCTION bioloupe_views.claim_next(p_run uuid, OUT mart text, OUT state text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_changed_only boolean;
    v_change record;
    v_reason text;
BEGIN
    SELECT coalesce((r.options->>'changed_only')::boolean, false) INTO v_changed_only
    FROM bioloupe_views.run r WHERE r.run_id = p_run;
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

    LOOP
        SELECT l.id, l.mart INTO v_id, mart
        FROM bioloupe_views.run_log l
        WHERE l.run_id = p_run AND l.status = 'pending'
          AND NOT EXISTS (
              SELECT 1
              FROM bioloupe_views.mart_dependency d
              JOIN bioloupe_views.run_log u ON u.run_id = l.run_id AND u.mart = d.depends_on
              WHERE d.mart = l.mart AND u.status NOT IN ('success', 'unchanged'))
          AND NOT EXISTS (
              SELECT 1
              FROM bioloupe_views.mart_inputs i
              JOIN bioloupe_views.run_log u ON u.run_id = l.run_id AND u.mart = i.upstream
              WHERE i.mart = l.mart AND u.position < l.position
                AND u.status IN ('pending', 'running'))
        ORDER BY l.position
        LIMIT 1
        FOR UPDATE OF l SKIP LOCKED;
        EXIT WHEN NOT FOUND OR NOT v_changed_only;
        SELECT * INTO v_change FROM bioloupe_views.mart_change(mart);
        v_reason := v_change.reason;
        EXIT WHEN v_change.changed;
        UPDATE bioloupe_views.run_log
        SET status = 'unchanged', pid = pg_catalog.pg_backend_pid(),
            started_at = pg_catalog.clock_timestamp(), ended_at = pg_catalog.clock_timestamp(),
            duration_seconds = 0, reason = v_change.reason, unchanged_since = v_change.since
        WHERE id = v_id;
        mart := NULL;
    END LOOP;
    IF mart IS NOT NULL THEN
        UPDATE bioloupe_views.run_log
        SET status = 'running', pid = pg_catalog.pg_backend_pid(),
            started_at = pg_catalog.clock_timestamp(),
            reason = v_reason
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
