-- The project's own schema, v1: the registry of marts, the compiled checks, the run log, and
-- the database-side refresh that the CLI and pg_cron both use. Installed by the first
-- migration; `alembic downgrade base` drops the whole schema. Source tables are never touched.

CREATE SCHEMA bioloupe_views;
COMMENT ON SCHEMA bioloupe_views IS 'bioloupe-views: mart registry, checks, run log and refresh';

-- Which materialized views in public are marts of this project, at which SQL version.
-- Written only by the migration operations (bioloupe_views/ops.py).
CREATE TABLE bioloupe_views.mart (
    name        text PRIMARY KEY,
    version     integer NOT NULL,
    migrated_at timestamptz NOT NULL DEFAULT now()
);

-- The data checks, compiled from bioloupe_views/sql/<mart>/ (mart.toml and checks/*.sql).
-- Each migration run rewrites this table from the files (bioloupe_views/checks.py), so the
-- files stay the one definition and every runner executes the same SQL.
CREATE TABLE bioloupe_views.check_definition (
    name     text PRIMARY KEY,
    mart     text NOT NULL,
    test     text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('error', 'warn')),
    position integer NOT NULL,
    sql      text NOT NULL
);

-- One row per refresh run, from the CLI or from pg_cron.
CREATE TABLE bioloupe_views.run (
    run_id     uuid PRIMARY KEY,
    trigger    text NOT NULL CHECK (trigger IN ('cli', 'pg_cron')),
    pid        integer NOT NULL DEFAULT pg_backend_pid(),
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at   timestamptz,
    status     text NOT NULL CHECK (status IN ('running', 'success', 'error', 'skipped')),
    message    text
);

-- One row per mart per run: the run log.
CREATE TABLE bioloupe_views.run_log (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           uuid NOT NULL,
    mart             text NOT NULL,
    started_at       timestamptz,
    ended_at         timestamptz,
    duration_seconds numeric(12, 3),
    mode             text CHECK (mode IN ('concurrent', 'plain')),
    rows             bigint,
    status           text NOT NULL CHECK (status IN ('success', 'error', 'check_failed', 'skipped')),
    error            text,
    trigger          text NOT NULL CHECK (trigger IN ('cli', 'pg_cron')),
    checks           jsonb
);
CREATE INDEX run_log_mart_idx ON bioloupe_views.run_log (mart, id DESC);
CREATE INDEX run_log_run_idx ON bioloupe_views.run_log (run_id);
