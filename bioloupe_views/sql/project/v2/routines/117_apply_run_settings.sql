-- The run's per-mart settings, for the transaction that refreshes one mart: call it as its
-- own statement just before refresh_mart(), so that statement_timeout covers that mart alone.
CREATE FUNCTION bioloupe_views.apply_run_settings(p_run uuid) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_options jsonb;
BEGIN
    SELECT r.options INTO v_options FROM bioloupe_views.run r WHERE r.run_id = p_run;
    IF v_options->>'lock_timeout' IS NOT NULL THEN
        PERFORM pg_catalog.set_config('lock_timeout', v_options->>'lock_timeout', true);
    END IF;
    IF v_options->>'statement_timeout' IS NOT NULL THEN
        PERFORM pg_catalog.set_config('statement_timeout', v_options->>'statement_timeout', true);
    END IF;
END;
$$;
