-- Run one mart's checks (all marts' when p_mart is NULL). A check that cannot run (say, its
-- mart is unpopulated) is reported with status 'error', never as a pass. `blocks` is the one
-- rule for what stops a publish: an error-severity check that failed or could not run.
-- Timeouts and cancellations are not caught.
CREATE FUNCTION bioloupe_views.run_checks(p_mart text)
RETURNS TABLE (name text, mart text, severity text, status text, failures bigint, sample jsonb,
               error text, blocks boolean)
LANGUAGE plpgsql AS $$
DECLARE
    c bioloupe_views.check_definition;
BEGIN
    FOR c IN
        SELECT * FROM bioloupe_views.check_definition cd
        WHERE cd.mart = p_mart OR p_mart IS NULL
        ORDER BY cd.position
    LOOP
        name := c.name;
        mart := c.mart;
        severity := c.severity;
        error := NULL;
        BEGIN
            EXECUTE format(
                'WITH offending AS MATERIALIZED (%s
) SELECT count(*), coalesce((SELECT jsonb_agg(to_jsonb(s)) FROM (SELECT * FROM offending LIMIT 5) s), ''[]'') FROM offending',
                c.sql)
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
        blocks := c.severity = 'error' AND status IN ('fail', 'error');
        RETURN NEXT;
    END LOOP;
END;
$$;
