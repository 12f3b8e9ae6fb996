-- Refresh and audit one claimed mart of a run, in the caller's transaction, and write its
-- outcome to its run-log row in that same transaction: a publish and its log entry commit
-- together, or neither does. The refresh, ANALYZE, row count and checks run in a
-- subtransaction that is rolled back unless the mart may be published, so the caller always
-- commits. The mart is published only when
--   * no check blocks (run_checks().blocks, the one rule), and
--   * the run still holds the refresh lock: a run whose session ended is not logged by
--     anyone, and another run may already be going.
-- A statement timeout, a lock timeout or any error fails this mart alone; a cancel (Ctrl-C
-- of the client) records it as cancelled. CONCURRENTLY needs a populated view, so an
-- unpopulated one gets a plain refresh ("fallback": true).
-- What the refresh could see is recorded for --changed-only runs (mart_change()): a snapshot
-- taken before the REFRESH statement (whose own snapshot is later, so sees at least as
-- much), the transaction that publishes it, and the mart's version.
-- Checks that read another mart of the run that is earlier in its order and that another
-- session is refreshing right now wait for it to finish (however it ends) before they run:
-- the audit then reads the rows published in this run, while the refreshes themselves ran
-- side by side. The snapshot the checks start from is recorded too (check_snapshot), so a
-- later --changed-only run does not count that publish as a change to this mart. The wait
-- reads only what moves while it waits: the run log at read committed (each statement sees
-- the latest commits, so a read committed transaction is required) and the live lock table
-- (pg_locks; pg_stat_activity would be read once per transaction). It ends as soon as the
-- upstream's session is gone, and fails the mart as soon as its own run is no longer
-- running or has lost its refresh lock (its client is gone), so a worker never outlives
-- its run.
-- No parallel workers: a refresh takes one core per mart, so the app's readers keep the
-- others; independent marts are refreshed side by side on their own sessions instead.
-- A mart the run swaps (run_log.strategy, plan_strategy()) is built aside instead
-- (stage_mart(), parallel query allowed there) and audited there (audit_staged()), the
-- same checks and publish rule; if it may be published, publish_staged() swaps its group
-- in once every member is ready ('staged' until then), and if not, its group is held back
-- (hold_back()). Nothing live changes before the whole group has passed its checks.
-- A concurrent refresh records the rows it inserted and deleted (the transaction's own
-- counters, pg_stat_xact_all_tables), which `auto` reads to choose.
CREATE FUNCTION bioloupe_views.refresh_mart(p_run uuid, p_mart text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_options jsonb;
    v_run_pid integer;
    v_log_id bigint;
    v_started timestamptz;
    v_populated boolean;
    v_concurrently boolean;
    v_mode text;
    v_rows bigint;
    v_checks jsonb;
    v_status text := 'success';
    v_error text;
    v_sqlstate text;
    v_context text;
    v_result jsonb;
    v_snapshot pg_snapshot;
    v_check_snapshot pg_snapshot;
    v_version integer;
    v_strategy text;
    v_relid oid;
    v_before record;
    v_inserted bigint;
    v_deleted bigint;
    v_publish jsonb;
    v_lock_seconds numeric;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'refresh_mart() needs a read committed transaction, not %',
            pg_catalog.current_setting('transaction_isolation')
            USING HINT = 'SET default_transaction_isolation = ''read committed'' in the session that drives the run',
                  ERRCODE = 'invalid_transaction_state';
    END IF;
    SELECT r.options, r.pid INTO v_options, v_run_pid
    FROM bioloupe_views.run r WHERE r.run_id = p_run AND r.status = 'running';
    SELECT l.id, l.started_at, l.strategy INTO v_log_id, v_started, v_strategy
    FROM bioloupe_views.run_log l
    WHERE l.run_id = p_run AND l.mart = p_mart AND l.status = 'running';
    IF v_run_pid IS NULL OR v_log_id IS NULL THEN
        RAISE EXCEPTION 'mart % is not claimed in a running run %', p_mart, p_run
            USING HINT = 'claim it with bioloupe_views.claim_next() first';
    END IF;
    v_concurrently := coalesce((v_options->>'concurrently')::boolean, true);
    BEGIN
        SELECT mm.populated, mm.version, mm.relid INTO v_populated, v_version, v_relid
        FROM bioloupe_views.managed_mart mm WHERE mm.name = p_mart;
        v_snapshot := pg_catalog.pg_current_snapshot();
        IF v_strategy = 'swap' THEN
            v_mode := 'swap';
            v_rows := bioloupe_views.stage_mart(p_run, p_mart);
        ELSE
            v_mode := CASE WHEN v_concurrently AND v_populated THEN 'concurrent' ELSE 'plain' END;
            SELECT t.n_tup_ins, t.n_tup_del INTO v_before
            FROM pg_catalog.pg_stat_xact_all_tables t WHERE t.relid = v_relid;
            PERFORM bioloupe_views.refresh_view(p_mart, v_mode = 'concurrent');
            IF v_mode = 'concurrent' THEN
                SELECT t.n_tup_ins - v_before.n_tup_ins, t.n_tup_del - v_before.n_tup_del
                INTO v_inserted, v_deleted
                FROM pg_catalog.pg_stat_xact_all_tables t WHERE t.relid = v_relid;
            END IF;
            EXECUTE format('SELECT pg_catalog.count(*) FROM public.%I', p_mart) INTO v_rows;
        END IF;
        IF coalesce((v_options->>'checks')::boolean, true) THEN
            LOOP
                EXIT WHEN NOT EXISTS (
                    SELECT 1
                    FROM bioloupe_views.mart_inputs i
                    JOIN bioloupe_views.run_log me ON me.id = v_log_id
                    JOIN bioloupe_views.run_log u ON u.run_id = p_run AND u.mart = i.upstream
                    WHERE i.mart = p_mart AND u.position < me.position AND u.status = 'running'
                      AND u.pid <> pg_catalog.pg_backend_pid()
                      AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks a
                                  WHERE a.pid = u.pid AND a.locktype = 'virtualxid' AND a.granted));
                IF NOT EXISTS (SELECT 1 FROM bioloupe_views.run r
                               WHERE r.run_id = p_run AND r.status = 'running') THEN
                    RAISE EXCEPTION 'stopped waiting for an upstream mart: the run is no longer running';
                END IF;
                IF NOT EXISTS (
                        SELECT 1 FROM pg_catalog.pg_locks l
                        WHERE l.locktype = 'advisory' AND l.granted AND l.pid = v_run_pid
                          AND l.classid = 1651470447 AND l.objid = 1 AND l.objsubid = 2) THEN
                    RAISE EXCEPTION 'stopped waiting for an upstream mart: the run lost its refresh lock (its client session ended)';
                END IF;
                PERFORM pg_catalog.pg_sleep(0.05);
            END LOOP;
            v_check_snapshot := pg_catalog.pg_current_snapshot();
            IF v_strategy = 'swap' THEN
                v_checks := bioloupe_views.audit_staged(p_run, p_mart);
            ELSE
                SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c)), '[]') INTO v_checks
                FROM bioloupe_views.run_checks(p_mart) c;
            END IF;
            IF EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(v_checks) e
                       WHERE (e->>'blocks')::boolean) THEN
                v_status := 'check_failed';
            END IF;
        END IF;
        IF v_status = 'success' AND NOT EXISTS (
                SELECT 1 FROM pg_catalog.pg_locks l
                WHERE l.locktype = 'advisory' AND l.granted AND l.pid = v_run_pid
                  AND l.classid = 1651470447 AND l.objid = 1 AND l.objsubid = 2) THEN
            v_status := 'error';
            v_error := 'rolled back: the run lost its refresh lock (its database session ended)';
        END IF;
        IF v_status <> 'success' THEN
            RAISE EXCEPTION USING ERRCODE = 'BV001';  -- undo the refresh, keep the outcome
        END IF;
        IF v_strategy = 'swap' THEN
            v_publish := bioloupe_views.publish_staged(p_run, p_mart);
            v_status := v_publish->>'status';
            v_error := v_publish->>'error';
            v_lock_seconds := (v_publish->>'lock_seconds')::numeric;
            IF v_status IN ('skipped', 'error') THEN
                RAISE EXCEPTION USING ERRCODE = 'BV001';  -- not published: drop the build aside
            END IF;
        END IF;
    EXCEPTION
        WHEN SQLSTATE 'BV001' THEN
            NULL;
        WHEN query_canceled THEN
            GET STACKED DIAGNOSTICS v_context = PG_EXCEPTION_CONTEXT;
            v_sqlstate := SQLSTATE;
            v_error := SQLERRM;
            v_status := CASE WHEN SQLERRM LIKE '%user request%' THEN 'cancelled' ELSE 'error' END;
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_context = PG_EXCEPTION_CONTEXT;
            v_sqlstate := SQLSTATE;
            v_error := SQLERRM;
            v_status := 'error';
    END;
    IF v_strategy = 'swap' AND coalesce((v_publish->>'swap_failed')::boolean, false) THEN
        PERFORM bioloupe_views.hold_back(p_run, p_mart, v_error, 'error');
    ELSIF v_strategy = 'swap' AND v_status IN ('error', 'check_failed', 'cancelled') THEN
        PERFORM bioloupe_views.hold_back(p_run, p_mart, pg_catalog.replace(v_status, '_', ' '));
    END IF;
    UPDATE bioloupe_views.run_log
    SET status = v_status, ended_at = pg_catalog.clock_timestamp(),
        duration_seconds = extract(epoch FROM pg_catalog.clock_timestamp() - started_at),
        mode = v_mode, rows = v_rows,
        error = v_error, sqlstate = v_sqlstate, error_context = v_context, checks = v_checks,
        snapshot = v_snapshot, check_snapshot = v_check_snapshot, version = v_version,
        inserted = v_inserted, deleted = v_deleted, swap_lock_seconds = v_lock_seconds,
        xid = CASE WHEN v_status IN ('success', 'staged') THEN pg_catalog.pg_current_xact_id() END
    WHERE id = v_log_id
    RETURNING pg_catalog.jsonb_build_object(
        'mart', mart, 'status', status, 'mode', mode,
        'fallback', v_concurrently AND NOT v_populated, 'rows', rows, 'error', error,
        'sqlstate', sqlstate, 'context', error_context, 'started_at', started_at, 'ended_at', ended_at,
        'seconds', duration_seconds, 'checks', checks, 'strategy', strategy,
        'strategy_reason', strategy_reason, 'inserted', inserted, 'deleted', deleted)
    INTO v_result;
    RETURN v_result;
END;
$$;
