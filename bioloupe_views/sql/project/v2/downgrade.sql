-- Back to project schema v1. The run history is kept; values v1 does not know are mapped to
-- the nearest v1 value (a cancelled mart was an error, a Dagster run a client run), and a
-- run or mart left unfinished is closed as an error.
UPDATE bioloupe_views.run_log
SET status = 'error', error = coalesce(error, 'cancelled'), ended_at = coalesce(ended_at, clock_timestamp())
WHERE status IN ('cancelled', 'pending', 'running');
UPDATE bioloupe_views.run_log SET trigger = 'cli' WHERE trigger = 'dagster';
UPDATE bioloupe_views.run
SET status = 'error', message = coalesce(message, 'cancelled'), ended_at = coalesce(ended_at, clock_timestamp())
WHERE status IN ('cancelled', 'running');
UPDATE bioloupe_views.run SET trigger = 'cli' WHERE trigger = 'dagster';

DROP INDEX bioloupe_views.run_log_run_mart_idx;
CREATE INDEX run_log_run_idx ON bioloupe_views.run_log (run_id);
ALTER TABLE bioloupe_views.run_log
    DROP COLUMN position,
    DROP COLUMN pid,
    DROP COLUMN sqlstate,
    DROP COLUMN error_context,
    DROP CONSTRAINT run_log_status_check,
    ADD CONSTRAINT run_log_status_check
        CHECK (status IN ('success', 'error', 'check_failed', 'skipped')),
    DROP CONSTRAINT run_log_trigger_check,
    ADD CONSTRAINT run_log_trigger_check CHECK (trigger IN ('cli', 'pg_cron'));

DROP INDEX bioloupe_views.run_running_idx;
DROP INDEX bioloupe_views.run_started_idx;
ALTER TABLE bioloupe_views.run
    DROP COLUMN options,
    DROP COLUMN trigger_ref,
    DROP CONSTRAINT run_trigger_check,
    ADD CONSTRAINT run_trigger_check CHECK (trigger IN ('cli', 'pg_cron')),
    DROP CONSTRAINT run_status_check,
    ADD CONSTRAINT run_status_check CHECK (status IN ('running', 'success', 'error', 'skipped'));

DROP TABLE bioloupe_views.mart_check;
DROP TABLE bioloupe_views.refresher_role;
DROP TABLE bioloupe_views.refresh_setting;
DROP SCHEMA bioloupe_views_checks;
CREATE TABLE bioloupe_views.check_definition (
    name     text PRIMARY KEY,
    mart     text NOT NULL,
    test     text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('error', 'warn')),
    position integer NOT NULL,
    sql      text NOT NULL
);
