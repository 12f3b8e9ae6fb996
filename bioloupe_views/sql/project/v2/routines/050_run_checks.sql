-- Run one mart's checks (all marts' when p_mart is NULL), in position order. Each check is a
-- view in bioloupe_views_checks that returns its offending rows; its SQL was fixed by the
-- migration's role when it created the view, so no other role can change what runs here.
-- A check that cannot run (say, its mart is unpopulated) has status 'error', never 'pass'.
-- `blocks` is the one rule for what stops a publish, used by every client: a check that
-- failed at error severity, or that could not run at any severity.
-- Timeouts and cancellations are not caught: the caller's statement ends.
CREATE FUNCTION bioloupe_views.run_checks(p_mart text)
RETURNS TABLE (name text, mart text, severity text, status text, failures bigint, sample jsonb,
               error text, blocks boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT mc.name, mc.mart, mc.severity, mc.relation FROM bioloupe_views.mart_check mc
        WHERE mc.mart = p_mart OR p_mart IS NULL
        ORDER BY mc.position
    LOOP
        name := c.name;
        mart := c.mart;
        severity := c.severity;
        error := NULL;
        BEGIN
            EXECUTE format(
                'WITH offending AS MATERIALIZED (SELECT * FROM bioloupe_views_checks.%I)'
                ' SELECT pg_catalog.count(*), coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s))'
                ' FROM (SELECT * FROM offending LIMIT 5) s), ''[]'') FROM offending', c.relation)
            INTO failures, sample;
            status := CASE WHEN failures = 0 THEN 'pass'
                           WHEN c.severity = 'warn' THEN 'warn'
                           ELSE 'fail' END;
        EXCEPTION WHEN OTHERS THEN
            failures := NULL;
            sample := NULL;
            status := 'error';
            error := SQLERRM;
        END;
        blocks := status IN ('fail', 'error');
        RETURN NEXT;
    END LOOP;
END;
$$;
