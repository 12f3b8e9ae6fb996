-- REFRESH and ANALYZE one managed mart with its owner's rights. SECURITY DEFINER because
-- PostgreSQL 15 and 16 let only a mart's owner (or a member of the owning role, who could
-- then also change the mart and its checks) refresh it; this function lets the refresher
-- role do exactly this and nothing more. Only registered marts, only these two statements,
-- names quoted, search_path pinned; EXECUTE is granted to the refresher role only.
-- The settings that change rows (refresh_setting, e.g. TimeZone) are the migration's, so
-- every client's refresh stores the same rows whatever its own session says.
CREATE FUNCTION bioloupe_views.refresh_view(p_mart text, p_concurrently boolean)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT rs.name, rs.value FROM bioloupe_views.refresh_setting rs LOOP
        PERFORM pg_catalog.set_config(s.name, s.value, true);
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM bioloupe_views.managed_mart mm WHERE mm.name = p_mart) THEN
        RAISE EXCEPTION 'unknown mart %', p_mart USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_concurrently THEN
        EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY public.%I', p_mart);
    ELSE
        EXECUTE format('REFRESH MATERIALIZED VIEW public.%I', p_mart);
    END IF;
    EXECUTE format('ANALYZE public.%I', p_mart);
END;
$$;
