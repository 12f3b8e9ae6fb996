-- Start a run of the selected marts (all when p_marts is NULL); the caller must hold the
-- refresh lock. Unknown names are an error, so every client rejects them the same way.
-- No other run can be alive while we hold the lock, so one still marked 'running' lost its
-- session before it could finish: it and its unfinished marts are closed first. Each
-- selected mart gets a 'pending' row in the run log, the run's queue: in refresh order, the
-- longest critical path first (refresh_priority), so few cores start on what others wait for.
-- The run log keeps what is younger than the run's `retention` option (default 90 days):
-- older runs and their marts' rows are deleted here, so the log stays bounded with no job
-- of its own, except each mart's latest successful refresh and its run: STALE, --max-age,
-- Dagster's freshness and --changed-only all read it, so `retention 0` keeps exactly that.
-- So does the source change log (prune_source_change()), after the tracking record has
-- been brought up to date (note_source_tracking()): a source whose tracking (re)started
-- since the last run makes its marts count as changed.
-- `strategy` (concurrent, swap or auto; `swap_share` for auto, default 0.2) chooses how
-- each mart is published (plan_strategy()); a swap may bring along marts the run did not
-- select. Whatever an earlier run left built aside is dropped first (clear_stages()).
CREATE FUNCTION bioloupe_views.start_run(
    p_trigger text, p_marts text[] DEFAULT NULL, p_options jsonb DEFAULT '{}',
    p_trigger_ref text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_run uuid := pg_catalog.gen_random_uuid();
    v_unknown text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM bioloupe_views.refresh_lock_holder() h
                   WHERE h.pid = pg_catalog.pg_backend_pid()) THEN
        RAISE EXCEPTION 'start_run needs the refresh lock: take it with bioloupe_views.try_refresh_lock() first';
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_literal(n), ', ' ORDER BY n) INTO v_unknown
    FROM pg_catalog.unnest(p_marts) AS n
    WHERE n IS NULL OR NOT EXISTS (SELECT 1 FROM bioloupe_views.managed_mart mm WHERE mm.name = n);
    IF coalesce(p_options->>'strategy', 'concurrent') NOT IN ('concurrent', 'swap', 'auto') THEN
        RAISE EXCEPTION 'unknown strategy %: use concurrent, swap or auto', p_options->>'strategy'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(p_options->>'strategy', 'concurrent') <> 'concurrent'
       AND coalesce((p_options->>'atomic')::boolean, false) THEN
        RAISE EXCEPTION 'an atomic run publishes every mart in one transaction: it needs strategy concurrent, not %',
            p_options->>'strategy' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown mart %: valid names are %', v_unknown,
            (SELECT pg_catalog.string_agg(mm.name, ', ' ORDER BY mm.name) FROM bioloupe_views.managed_mart mm)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE bioloupe_views.run_log
    SET status = 'error', ended_at = pg_catalog.clock_timestamp(),
        error = 'abandoned: its run''s session ended before the mart finished'
    WHERE status IN ('pending', 'running')
      AND run_id IN (SELECT r.run_id FROM bioloupe_views.run r WHERE r.status = 'running');
    UPDATE bioloupe_views.run
    SET status = 'error', ended_at = pg_catalog.clock_timestamp(),
        message = 'abandoned: its session ended before the run finished'
    WHERE status = 'running';
    PERFORM bioloupe_views.clear_stages();
    DELETE FROM bioloupe_views.run_log l
    USING bioloupe_views.run r
    WHERE l.run_id = r.run_id
      AND r.started_at < pg_catalog.now()
                         - coalesce(p_options->>'retention', '90 days')::interval
      AND l.id NOT IN (SELECT pg_catalog.max(k.id) FROM bioloupe_views.run_log k
                       WHERE k.status = 'success' GROUP BY k.mart);
    DELETE FROM bioloupe_views.run r
    WHERE r.started_at < pg_catalog.now() - coalesce(p_options->>'retention', '90 days')::interval
      AND NOT EXISTS (SELECT 1 FROM bioloupe_views.run_log k WHERE k.run_id = r.run_id);
    PERFORM bioloupe_views.note_source_tracking();
    PERFORM bioloupe_views.prune_source_change();
    INSERT INTO bioloupe_views.run (run_id, trigger, status, options, trigger_ref)
    VALUES (v_run, p_trigger, 'running', coalesce(p_options, '{}'), p_trigger_ref);
    INSERT INTO bioloupe_views.run_log (run_id, mart, status, trigger, position)
    SELECT v_run, o.mart, 'pending', p_trigger,
           pg_catalog.row_number() OVER (ORDER BY p.seconds DESC, o.level, o.mart)
    FROM bioloupe_views.refresh_order o
    JOIN bioloupe_views.refresh_priority p ON p.mart = o.mart
    WHERE p_marts IS NULL OR o.mart = ANY (p_marts);
    PERFORM bioloupe_views.plan_strategy(v_run, coalesce(p_options->>'strategy', 'concurrent'),
                                         coalesce((p_options->>'swap_share')::numeric, 0.2));
    RETURN v_run;
END;
$$;
