-- Claim the next mart of a run that is ready: pending, and every upstream mart of the same
-- run refreshed successfully. Called by every worker session of every client, each in its
-- own short transaction; SKIP LOCKED lets sessions claim side by side. First, dependents of
-- a mart that did not refresh are skipped (transitively): they would be built on stale
-- input. Returns the mart and 'claimed'; or NULL and 'wait' (marts still running or locked
-- by another claim); or NULL and 'done'.
-- In a run with the changed_only option, a ready mart that mart_change() finds unchanged is
-- logged 'unchanged' (with the time of its last refresh) instead of claimed, and the next
-- one is tried; a claimed mart's log row says why it is refreshed. An unchanged mart counts
-- as refreshed for its dependents' readiness, not as a change. So does a mart built aside
-- for a swap ('staged'): the marts that read it are built from its build aside and
-- published with it. `strategy` says how the claimed mart is published (plan_strategy()).
CREATE FUNCTION bioloupe_views.claim_next(p_run uuid, OUT mart text, OUT state text,
                                          OUT strategy text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_changed_only boolean;
    v_change record;
    v_reason text;
    v_claimed text;
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
    -- A swap group with a member that did not make it is not published: the others that
    -- wait aside or have not started are held back (hold_back() does it as soon as it can;
    -- this catches a member whose outcome the client recorded, say its session died).
    UPDATE bioloupe_views.run_log l
    SET status = 'skipped', ended_at = pg_catalog.clock_timestamp(),
        error = 'held back: ' || f.failed || ' of its swap group did not pass; the live marts keep their data'
    FROM (SELECT g.swap_group,
                 pg_catalog.string_agg(pg_catalog.format('%s (%s)', g.mart, pg_catalog.replace(g.status, '_', ' ')),
                                       ', ' ORDER BY g.position) AS failed
          FROM bioloupe_views.run_log g
          WHERE g.run_id = p_run AND g.swap_group IS NOT NULL
            AND g.status IN ('error', 'check_failed', 'cancelled')
          GROUP BY g.swap_group) f
    WHERE l.run_id = p_run AND l.swap_group = f.swap_group AND l.status IN ('staged', 'pending');

    LOOP
        SELECT l.id, l.mart, coalesce(l.strategy, 'concurrent') INTO v_id, mart, strategy
        FROM bioloupe_views.run_log l
        WHERE l.run_id = p_run AND l.status = 'pending'
          AND NOT EXISTS (
              SELECT 1
              FROM bioloupe_views.mart_dependency d
              JOIN bioloupe_views.run_log u ON u.run_id = l.run_id AND u.mart = d.depends_on
              WHERE d.mart = l.mart AND u.status NOT IN ('success', 'unchanged', 'staged'))
        ORDER BY l.position
        LIMIT 1
        FOR UPDATE OF l SKIP LOCKED;
        EXIT WHEN NOT FOUND OR NOT v_changed_only;
        -- A mart reading one this run swaps must be swapped with it: it reads the retired
        -- relation otherwise.
        v_claimed := mart;
        SELECT pg_catalog.string_agg(u.mart, ', ' ORDER BY u.mart) INTO v_reason
        FROM bioloupe_views.mart_dependency d
        JOIN bioloupe_views.run_log u ON u.run_id = p_run AND u.mart = d.depends_on
        WHERE d.mart = v_claimed AND u.status = 'staged';
        IF v_reason IS NOT NULL THEN
            v_reason := 'upstream ' || v_reason || ' is swapped in this run';
            EXIT;
        END IF;
        SELECT * INTO v_change FROM bioloupe_views.mart_change(mart);
        v_reason := v_change.reason;
        EXIT WHEN v_change.changed;
        UPDATE bioloupe_views.run_log
        SET status = 'unchanged', pid = pg_catalog.pg_backend_pid(),
            started_at = pg_catalog.clock_timestamp(), ended_at = pg_catalog.clock_timestamp(),
            duration_seconds = 0, reason = v_change.reason, unchanged_since = v_change.since
        WHERE id = v_id;
        mart := NULL;
        strategy := NULL;
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
