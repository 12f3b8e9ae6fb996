-- Refresh one mart and audit it, in the caller's transaction. Returns the result as JSON;
-- status 'check_failed' means an error-severity check failed or could not run, and the
-- caller must roll back so readers keep the last good data. CONCURRENTLY needs a populated
-- view, so an unpopulated one gets a plain refresh ("fallback": true).
-- No parallel workers: a refresh takes one core per mart, so the app's readers keep the
-- others. refresh-views already refreshes independent marts side by side. Measured at
-- production scale on 2 cores (benchmarks/): with the default 4 threads, read p99 during
-- the run 5.3-5.7 ms instead of 7-8 ms, same wall time (33-36s); the price is a serial run
-- (--threads 1, pg_cron's refresh_all) taking 63s instead of 47s.
CREATE FUNCTION bioloupe_views.refresh_mart(
    p_mart text, p_concurrently boolean DEFAULT true, p_checks boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    v_populated boolean;
    v_mode text;
    v_rows bigint;
    v_checks jsonb;
    v_status text := 'success';
BEGIN
    SELECT mm.populated INTO v_populated FROM bioloupe_views.managed_mart mm WHERE mm.name = p_mart;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown mart %', p_mart
            USING HINT = 'run `alembic upgrade head`, or choose one of bioloupe_views.mart';
    END IF;
    IF p_concurrently AND v_populated THEN
        EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY public.%I', p_mart);
        v_mode := 'concurrent';
    ELSE
        EXECUTE format('REFRESH MATERIALIZED VIEW public.%I', p_mart);
        v_mode := 'plain';
    END IF;
    EXECUTE format('ANALYZE public.%I', p_mart);
    EXECUTE format('SELECT count(*) FROM public.%I', p_mart) INTO v_rows;
    IF p_checks THEN
        SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]'::jsonb) INTO v_checks
        FROM bioloupe_views.run_checks(p_mart) r;
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_checks) e WHERE (e->>'blocks')::boolean) THEN
            v_status := 'check_failed';
        END IF;
    END IF;
    RETURN jsonb_build_object(
        'mart', p_mart, 'status', v_status, 'mode', v_mode,
        'fallback', p_concurrently AND NOT v_populated, 'rows', v_rows,
        'started_at', v_started, 'ended_at', clock_timestamp(), 'checks', v_checks);
END;
$$;
