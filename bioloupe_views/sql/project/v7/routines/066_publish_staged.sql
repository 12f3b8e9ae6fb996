-- What becomes of a mart built aside and audited (refresh_mart() calls this in the mart's
-- own transaction, which commits right after): the members of a swap group are published
-- together, by whichever of them is ready last, so a mart is never published on an
-- upstream that is not live. One at a time per group (a transaction advisory lock), so
-- two members finishing at once cannot both think the other is still building. Returns
--   * 'staged': others of the group are still to come; this one waits, committed aside
--     (a member a --changed-only run left unchanged stays live and takes no part);
--   * 'skipped': another member did not make it: this one is held back (its build aside
--     is dropped with the caller's transaction) and the error says which member held it;
--   * 'success': the group was swapped in (swap_group()); the other members' log rows are
--     marked published in this same transaction;
--   * 'error' (swap_failed): the swap's locks never came; nothing live changed, and the
--     caller holds the group back with this error.
CREATE FUNCTION bioloupe_views.publish_staged(p_run uuid, p_mart text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_group text;
    v_failed text;
    v_swap record;
BEGIN
    SELECT l.swap_group INTO v_group FROM bioloupe_views.run_log l
    WHERE l.run_id = p_run AND l.mart = p_mart AND l.status = 'running' AND l.strategy = 'swap';
    IF v_group IS NULL THEN
        RAISE EXCEPTION 'mart % is not being swapped by run %', p_mart, p_run
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(1651470448, pg_catalog.hashtext(p_run::text || v_group));
    -- The members that did not pass (those merely held back by them are not named).
    SELECT coalesce(pg_catalog.string_agg(pg_catalog.format('%s (%s)', l.mart,
                        pg_catalog.replace(l.status, '_', ' ')), ', ' ORDER BY l.position)
                        FILTER (WHERE l.status <> 'skipped'),
                    pg_catalog.string_agg(l.mart || ' (skipped)', ', ' ORDER BY l.position))
    INTO v_failed
    FROM bioloupe_views.run_log l
    WHERE l.run_id = p_run AND l.swap_group = v_group AND l.mart <> p_mart
      AND l.status IN ('error', 'check_failed', 'skipped', 'cancelled');
    IF v_failed IS NOT NULL THEN
        RETURN pg_catalog.jsonb_build_object('status', 'skipped', 'error',
            'held back: ' || v_failed || ' of its swap group did not pass; the live marts keep their data');
    END IF;
    IF EXISTS (SELECT 1 FROM bioloupe_views.run_log l
               WHERE l.run_id = p_run AND l.swap_group = v_group AND l.mart <> p_mart
                 AND l.status NOT IN ('staged', 'unchanged')) THEN
        RETURN pg_catalog.jsonb_build_object('status', 'staged');
    END IF;
    BEGIN
        SELECT * INTO v_swap FROM bioloupe_views.swap_group(p_run, v_group);
    EXCEPTION WHEN lock_not_available OR object_in_use THEN
        RETURN pg_catalog.jsonb_build_object('status', 'error', 'error', SQLERRM, 'swap_failed', true);
    END;
    UPDATE bioloupe_views.run_log
    SET status = 'success', xid = pg_catalog.pg_current_xact_id(),
        swap_lock_seconds = v_swap.locked_seconds
    WHERE run_id = p_run AND swap_group = v_group AND mart <> p_mart AND status = 'staged';
    RETURN pg_catalog.jsonb_build_object('status', 'success', 'lock_seconds', v_swap.locked_seconds,
                                         'attempts', v_swap.attempts);
END;
$$;
