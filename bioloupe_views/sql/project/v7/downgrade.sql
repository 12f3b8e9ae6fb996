-- Project schema v7 -> v6: swap leftovers go first (clear_stages() of v7 ran at the last
-- run's start and end; whatever is still registered is dropped here, object by object),
-- then the strategy columns. Run history is kept: rows written by a swap are kept with
-- mode 'plain' (a heap built anew), a 'staged' row (a run cut short) becomes 'error'.
DO $$
DECLARE
    s record;
    o record;
BEGIN
    FOR s IN SELECT st.schema_name FROM bioloupe_views.stage st LOOP
        FOR o IN SELECT c.relname, c.relkind FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = s.schema_name AND c.relkind IN ('v', 'm')
                 ORDER BY c.relkind DESC LOOP
            EXECUTE pg_catalog.format('DROP %s IF EXISTS %I.%I',
                CASE o.relkind WHEN 'v' THEN 'VIEW' ELSE 'MATERIALIZED VIEW' END,
                s.schema_name, o.relname);
        END LOOP;
        EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I', s.schema_name);
    END LOOP;
END;
$$;
DROP TABLE bioloupe_views.stage;
UPDATE bioloupe_views.run_log SET mode = 'plain' WHERE mode = 'swap';
UPDATE bioloupe_views.run_log SET status = 'error',
       error = coalesce(error, 'staged for a swap that never happened')
WHERE status = 'staged';
ALTER TABLE bioloupe_views.run_log
    DROP CONSTRAINT run_log_status_check,
    ADD CONSTRAINT run_log_status_check CHECK (status IN
        ('pending', 'running', 'success', 'error', 'check_failed', 'skipped', 'cancelled',
         'unchanged')),
    DROP CONSTRAINT run_log_mode_check,
    ADD CONSTRAINT run_log_mode_check CHECK (mode IN ('concurrent', 'plain')),
    DROP COLUMN strategy,
    DROP COLUMN strategy_reason,
    DROP COLUMN swap_group,
    DROP COLUMN stage_schema,
    DROP COLUMN inserted,
    DROP COLUMN deleted,
    DROP COLUMN swap_lock_seconds;
