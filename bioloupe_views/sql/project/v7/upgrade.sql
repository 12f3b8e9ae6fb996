-- Project schema v7: a publish strategy per mart. Besides REFRESH ... CONCURRENTLY, a mart
-- may be built aside (in a stage schema of its own), audited there, and swapped in with its
-- dependent marts in one short transaction. Each refresh also records how many rows it
-- inserted and deleted, which `auto` reads to choose. Run history is untouched both ways.

-- strategy: what the run chose (concurrent or swap), and strategy_reason why; swap_group:
-- the marts published in one swap transaction share it (the first of them in refresh
-- order); stage_schema: where its build waits for the swap; a 'staged' mart is built and
-- audited, waiting for the rest of its group. inserted/deleted: rows a concurrent refresh
-- changed (a swap replaces the heap whole and records only what it built); swap_lock_seconds:
-- how long the swap held its exclusive locks.
ALTER TABLE bioloupe_views.run_log
    ADD COLUMN strategy text CHECK (strategy IN ('concurrent', 'swap')),
    ADD COLUMN strategy_reason text,
    ADD COLUMN swap_group text,
    ADD COLUMN stage_schema name,
    ADD COLUMN inserted bigint,
    ADD COLUMN deleted bigint,
    ADD COLUMN swap_lock_seconds numeric(12, 6),
    DROP CONSTRAINT run_log_mode_check,
    ADD CONSTRAINT run_log_mode_check CHECK (mode IN ('concurrent', 'plain', 'swap')),
    DROP CONSTRAINT run_log_status_check,
    ADD CONSTRAINT run_log_status_check CHECK (status IN
        ('pending', 'running', 'staged', 'success', 'error', 'check_failed', 'skipped',
         'cancelled', 'unchanged'));

-- Every schema a swap creates (a mart's stage, a group's retired relations), so that the
-- cleanup drops exactly those and nothing another role named alike. A row goes with its
-- schema, in the same transaction.
CREATE TABLE bioloupe_views.stage (
    schema_name name PRIMARY KEY,
    run_id      uuid NOT NULL,
    mart        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('stage', 'retired')),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
COMMENT ON TABLE bioloupe_views.stage IS
    'schemas of builds aside and of retired marts, until clear_stages() drops them';
