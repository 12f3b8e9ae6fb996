-- Run one mart's installed checks (all marts' when p_mart is NULL) against the live marts:
-- every client's audit, through checks_in().
CREATE FUNCTION bioloupe_views.run_checks(p_mart text)
RETURNS TABLE (name text, mart text, severity text, status text, failures bigint, sample jsonb,
               error text, blocks boolean, note text)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM bioloupe_views.checks_in(p_mart, 'bioloupe_views_checks', 'public')
$$;
