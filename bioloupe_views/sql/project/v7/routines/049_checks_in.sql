-- Run one mart's checks (all marts' when p_mart is NULL), in position order, reading the
-- check views in p_checks_schema and the mart's unique indexes in p_mart_schema: the live
-- ones (run_checks()), or a build aside and the copies of its checks in its stage schema
-- (audit_staged()). Not granted for that reason to anyone but the owner and the refresher,
-- and it runs with its caller's rights: it can read nothing its caller could not.
-- Each check is a view that returns its offending rows; its SQL was fixed by the migration's
-- role when it created the view, so no other role can change what runs here.
-- Three ways to a result, all with dbt's failure counts:
--   * a check implied by a unique index of the mart (implied_by) passes without reading the
--     mart, as long as that index is still unique, valid, whole (no predicate or
--     expression) and on no other columns than the ones recorded, the mart is populated,
--     and its guard (implied_guard_column of the mart's one scan, when it has one) counts
--     no row whose text could read back another way: it cannot fail then;
--   * column checks (batch_relation) take their count from one scan of the mart shared by
--     all of them; only a failing one reads its own view, for the sample;
--   * the others read their own view.
-- A check that cannot run (say, its mart is unpopulated) has status 'error', never 'pass'.
-- `blocks` is the one rule for what stops a publish, used by every client: a check that
-- failed at error severity, or that could not run at any severity.
-- Timeouts and cancellations are not caught: the caller's statement ends.
CREATE FUNCTION bioloupe_views.checks_in(p_mart text, p_checks_schema name, p_mart_schema name)
RETURNS TABLE (name text, mart text, severity text, status text, failures bigint, sample jsonb,
               error text, blocks boolean, note text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    v_batches jsonb := '{}';
    v_batch jsonb;
    v_implied boolean;
    v_scan name;
BEGIN
    FOR c IN
        SELECT mc.name, mc.mart, mc.severity, mc.relation, mc.batch_relation, mc.batch_column,
               mc.implied_by, mc.implied_columns, mc.implied_guard_relation,
               mc.implied_guard_column
        FROM bioloupe_views.mart_check mc
        WHERE mc.mart = p_mart OR p_mart IS NULL
        ORDER BY mc.position
    LOOP
        name := c.name;
        mart := c.mart;
        severity := c.severity;
        error := NULL;
        note := NULL;
        failures := NULL;
        sample := NULL;
        BEGIN
            v_implied := c.implied_by IS NOT NULL AND EXISTS (
                    SELECT 1
                    FROM pg_catalog.pg_index x
                    JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
                    JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
                    JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
                    WHERE n.nspname = p_mart_schema AND t.relname = c.mart
                      AND i.relname = c.implied_by AND i.relnamespace = n.oid
                      AND t.relispopulated
                      AND x.indisunique AND x.indisvalid AND x.indpred IS NULL
                      AND x.indexprs IS NULL
                      AND NOT EXISTS (
                          SELECT 1 FROM pg_catalog.unnest(x.indkey::int2[]) k(attnum)
                          JOIN pg_catalog.pg_attribute a
                            ON a.attrelid = t.oid AND a.attnum = k.attnum
                          WHERE NOT (a.attname = ANY (c.implied_columns))));
            -- The one scan of the mart this check reads, if any: its guard's, or its count's.
            v_scan := CASE WHEN v_implied THEN c.implied_guard_relation ELSE c.batch_relation END;
            IF v_scan IS NOT NULL AND NOT v_batches ? v_scan THEN
                BEGIN
                    EXECUTE format('SELECT pg_catalog.to_jsonb(b) FROM %I.%I b',
                                   p_checks_schema, v_scan) INTO v_batch;
                EXCEPTION WHEN OTHERS THEN
                    v_batch := pg_catalog.jsonb_build_object('error', SQLERRM);
                END;
                v_batches := v_batches || pg_catalog.jsonb_build_object(v_scan, v_batch);
            END IF;
            v_batch := v_batches -> v_scan;
            IF v_implied AND c.implied_guard_relation IS NOT NULL THEN
                -- The batch's own columns are c1, c2, ... and g1, ...: never 'error'.
                v_implied := NOT v_batch ? 'error'
                             AND (v_batch ->> c.implied_guard_column)::bigint = 0;
            END IF;
            IF v_implied THEN
                failures := 0;
                sample := '[]';
                note := 'implied by unique index ' || c.implied_by;
            ELSIF c.batch_relation IS NOT NULL THEN
                IF v_batch ? 'error' THEN
                    RAISE EXCEPTION '%', v_batch ->> 'error';
                END IF;
                failures := (v_batch ->> c.batch_column)::bigint;
                sample := '[]';
                note := 'counted in one scan with the other column checks';
            END IF;
            IF failures IS NULL OR failures > 0 THEN
                EXECUTE format(
                    'WITH offending AS MATERIALIZED (SELECT * FROM %I.%I)'
                    ' SELECT pg_catalog.count(*), coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s))'
                    ' FROM (SELECT * FROM offending LIMIT 5) s), ''[]'') FROM offending',
                    p_checks_schema, c.relation)
                INTO failures, sample;
                note := NULL;
            END IF;
            status := CASE WHEN failures = 0 THEN 'pass'
                           WHEN c.severity = 'warn' THEN 'warn'
                           ELSE 'fail' END;
        EXCEPTION WHEN OTHERS THEN
            failures := NULL;
            sample := NULL;
            note := NULL;
            status := 'error';
            error := SQLERRM;
        END;
        blocks := status IN ('fail', 'error');
        RETURN NEXT;
    END LOOP;
END;
$$;
