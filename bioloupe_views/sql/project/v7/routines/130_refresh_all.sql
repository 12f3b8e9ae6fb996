-- The in-database client, for pg_cron: `CALL bioloupe_views.refresh_all()`. It drives the
-- same engine as refresh-views, with one worker: the same lock, start_run() (unknown names
-- rejected), claim_next() (order, skipping dependents of a failed mart), refresh_mart()
-- (refresh, checks, the publish rule, the log row in the same transaction) and
-- finish_run(). `p_changed_only => true` refreshes only the marts whose inputs changed since
-- their last refresh (claim_next() logs the others 'unchanged'), as refresh-views
-- --changed-only does; `p_strategy => 'swap'` or `'auto'` publishes as refresh-views
-- --strategy does (plan_strategy()). A run that finds the lock taken records itself as skipped and does nothing,
-- so pg_cron's queued late runs are harmless. pg_cron commits inside a procedure only when
-- the job's command is this single CALL. Procedures that COMMIT cannot carry a SET clause,
-- so the search_path is pinned for each transaction instead, and the transactions after the
-- first are read committed whatever the session's default (a wait inside refresh_mart()
-- must see other sessions' commits).
--
-- The whole CALL is one statement, so a statement_timeout of the session, role or database
-- counts once, for all marts: when it fires during a refresh, refresh_mart() records that
-- mart as failed and the run goes on (the timer does not fire twice). When anything stops
-- the procedure between two marts (a timeout, a cancel), the run is closed and the lock
-- released before the error is raised again: a session that stays open (psql) never keeps
-- the lock, and no run stays 'running'.
CREATE PROCEDURE bioloupe_views.refresh_all(
    p_marts text[] DEFAULT NULL,
    p_concurrently boolean DEFAULT true,
    p_checks boolean DEFAULT true,
    p_trigger text DEFAULT 'pg_cron',
    p_retention interval DEFAULT '90 days',
    p_changed_only boolean DEFAULT false,
    p_strategy text DEFAULT 'concurrent')
LANGUAGE plpgsql
AS $$
DECLARE
    v_run uuid;
    v_claim record;
    v_busy text;
    v_failed text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM pg_catalog.set_config('default_transaction_isolation', 'read committed', false);
    IF NOT bioloupe_views.try_refresh_lock() THEN
        SELECT h.message INTO v_busy FROM bioloupe_views.refresh_lock_holder() h;
        PERFORM bioloupe_views.skip_run(p_trigger, coalesce(v_busy, 'another refresh held the lock'));
        COMMIT;
        RAISE NOTICE 'bioloupe_views: %; this run is skipped', v_busy;
        RETURN;
    END IF;
    BEGIN
        v_run := bioloupe_views.start_run(p_trigger, p_marts,
            pg_catalog.jsonb_build_object('concurrently', p_concurrently, 'checks', p_checks,
                                          'retention', p_retention::text,
                                          'changed_only', p_changed_only,
                                          'strategy', p_strategy));
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM bioloupe_views.release_refresh_lock();
        RAISE;
    END;
    COMMIT;
    LOOP
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        BEGIN
            SELECT c.mart, c.state, c.strategy INTO v_claim FROM bioloupe_views.claim_next(v_run) c;
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            v_failed := SQLERRM;
        END;
        EXIT WHEN v_failed IS NOT NULL;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        EXIT WHEN v_claim.state OPERATOR(pg_catalog.<>) 'claimed';
        BEGIN
            PERFORM bioloupe_views.apply_run_settings(v_run);
            PERFORM bioloupe_views.refresh_mart(v_run, v_claim.mart);
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            v_failed := SQLERRM;
        END;
        EXIT WHEN v_failed IS NOT NULL;
        COMMIT;
        -- A new transaction: the session's own search_path again until it is pinned.
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF v_claim.strategy OPERATOR(pg_catalog.=) 'swap' THEN
            -- A group just published leaves its retired marts: dropped at once.
            PERFORM bioloupe_views.clear_stages();
            COMMIT;
        END IF;
    END LOOP;
    IF v_failed IS NOT NULL THEN
        -- Whatever this transaction did is undone; record the interruption and let go.
        ROLLBACK;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        PERFORM bioloupe_views.record_result(v_run, v_claim.mart, 'error', v_failed)
        FROM (SELECT 1) one WHERE v_claim.mart IS NOT NULL;
        PERFORM bioloupe_views.finish_run(v_run, 'stopped: ' || v_failed);
        PERFORM bioloupe_views.release_refresh_lock();
        COMMIT;
        RAISE EXCEPTION 'bioloupe_views.refresh_all stopped: %', v_failed
            USING HINT = 'the run is closed and the refresh lock released; see bioloupe_views.run_log';
    END IF;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM bioloupe_views.finish_run(v_run);
    PERFORM bioloupe_views.release_refresh_lock();
    COMMIT;
END;
$$;
