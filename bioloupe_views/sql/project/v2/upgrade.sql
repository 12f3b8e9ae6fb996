-- Project schema v2: one refresh engine in the database.
-- The run log doubles as the run's queue: start_run() writes one 'pending' row per selected
-- mart, worker sessions claim them (claim_next(), FOR UPDATE SKIP LOCKED) and each mart's
-- publish commits together with its log row. Checks become views that the migration owner
-- creates (schema bioloupe_views_checks), listed in mart_check; no SQL text is stored for
-- another role to run.

ALTER TABLE bioloupe_views.run
    ADD COLUMN options jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN trigger_ref text,
    DROP CONSTRAINT run_trigger_check,
    ADD CONSTRAINT run_trigger_check CHECK (trigger IN ('cli', 'pg_cron', 'dagster')),
    DROP CONSTRAINT run_status_check,
    ADD CONSTRAINT run_status_check
        CHECK (status IN ('running', 'success', 'error', 'skipped', 'cancelled'));
COMMENT ON COLUMN bioloupe_views.run.options IS 'how the run refreshes: concurrently, checks, timeouts';
COMMENT ON COLUMN bioloupe_views.run.trigger_ref IS 'the client''s own id for the run, e.g. a Dagster run id';

-- The lock holder's run is found by its pid among running runs, without scanning history.
CREATE INDEX run_running_idx ON bioloupe_views.run (pid) WHERE status = 'running';
-- Retention prunes by age.
CREATE INDEX run_started_idx ON bioloupe_views.run (started_at);

ALTER TABLE bioloupe_views.run_log
    ADD COLUMN position integer,
    ADD COLUMN pid integer,
    ADD COLUMN sqlstate text,
    ADD COLUMN error_context text,
    DROP CONSTRAINT run_log_status_check,
    ADD CONSTRAINT run_log_status_check CHECK (status IN
        ('pending', 'running', 'success', 'error', 'check_failed', 'skipped', 'cancelled')),
    DROP CONSTRAINT run_log_trigger_check,
    ADD CONSTRAINT run_log_trigger_check CHECK (trigger IN ('cli', 'pg_cron', 'dagster'));
CREATE UNIQUE INDEX run_log_run_mart_idx ON bioloupe_views.run_log (run_id, mart);
DROP INDEX bioloupe_views.run_log_run_idx;

-- The checks of each mart at its migrated version. Each is a view in bioloupe_views_checks
-- (named after the check, shortened with a hash past PostgreSQL's 63 bytes),
-- owned by the migration's role, returning the offending rows; its names and operators were
-- bound when the migration created it.
CREATE SCHEMA bioloupe_views_checks;
COMMENT ON SCHEMA bioloupe_views_checks IS 'bioloupe-views: one view per data check, returning its offending rows';
CREATE TABLE bioloupe_views.mart_check (
    name     text PRIMARY KEY,
    mart     text NOT NULL,
    version  integer NOT NULL,
    test     text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('error', 'warn')),
    position integer NOT NULL,
    relation name NOT NULL UNIQUE  -- the check's view in bioloupe_views_checks
);
DROP TABLE bioloupe_views.check_definition;

-- The roles the migrations granted the refresher's rights to, so that a later migration
-- that recreates the routines grants them again.
CREATE TABLE bioloupe_views.refresher_role (
    role name PRIMARY KEY
);

-- Settings that change a mart's rows, fixed for every refresh whatever the client's session
-- says (mv_development_programs converts dates to timestamptz, so TimeZone is one). The
-- migration records the server's default for a plain session; refresh_view() applies it.
CREATE TABLE bioloupe_views.refresh_setting (
    name  text PRIMARY KEY,
    value text NOT NULL
);
