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

-- The registered marts that exist as materialized views in public.
CREATE VIEW bioloupe_views.managed_mart AS
SELECT m.name, m.version, c.oid AS relid, c.relispopulated AS populated
FROM bioloupe_views.mart m
JOIN pg_namespace n ON n.nspname = 'public'
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = m.name AND c.relkind = 'm';

-- Every relation each mart reads, from the catalog: a view's rewrite rule depends on every
-- relation its query reads. Plain views in between are followed (and listed), so a mart
-- reading a view that reads another mart still reads that mart. This is the only record of
-- the lineage: the dependency order below and `bioloupe-views graph` both come from it.
CREATE VIEW bioloupe_views.mart_reads AS
WITH RECURSIVE reads(mart, relid) AS (
    SELECT mm.name, d.refobjid
    FROM bioloupe_views.managed_mart mm
    JOIN pg_rewrite r ON r.ev_class = mm.relid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> mm.relid
    UNION
    SELECT reads.mart, d.refobjid
    FROM reads
    JOIN pg_class v ON v.oid = reads.relid AND v.relkind = 'v'
    JOIN pg_rewrite r ON r.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
)
SELECT DISTINCT mart, relid FROM reads;

-- Which mart reads which: the dependency order's one source.
CREATE VIEW bioloupe_views.mart_dependency AS
SELECT DISTINCT r.mart, up.name AS depends_on
FROM bioloupe_views.mart_reads r
JOIN bioloupe_views.managed_mart up ON up.relid = r.relid
WHERE up.name <> r.mart;

-- Each mart's level: 0 for marts that read only sources, else one more than its deepest
-- upstream mart. Refreshing in (level, mart) order respects every dependency.
CREATE VIEW bioloupe_views.refresh_order AS
WITH RECURSIVE depth(mart, level) AS (
    SELECT name, 0 FROM bioloupe_views.managed_mart
    UNION ALL
    SELECT dep.mart, depth.level + 1
    FROM depth
    JOIN bioloupe_views.mart_dependency dep ON dep.depends_on = depth.mart
)
SELECT mart, max(level) AS level
FROM depth
GROUP BY mart;

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

-- Refresh one mart and audit it, in the caller's transaction. Returns the result as JSON;
-- status 'check_failed' means an error-severity check failed or could not run, and the
-- caller must roll back so readers keep the last good data. CONCURRENTLY needs a populated
-- view, so an unpopulated one gets a plain refresh ("fallback": true).
-- No parallel workers: a refresh takes one core per mart, so the app's readers keep the
-- others. refresh-views already refreshes independent marts side by side. Measured at
-- production scale on 2 cores (benchmarks/): with the default 4 threads, read p99 during
-- the run 5.3-5.7 ms instead of 7-8 ms, same wall time (33-36s); the price is a serial run
-- (--threads 1, pg_cron's refresh_all) taking 63s instead of 47s.
CREATE FUNCTION bioloupe_views.refresh_mart(
    p_mart text, p_concurrently boolean DEFAULT true, p_checks boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    v_populated boolean;
    v_mode text;
    v_rows bigint;
    v_checks jsonb;
    v_status text := 'success';
BEGIN
    SELECT mm.populated INTO v_populated FROM bioloupe_views.managed_mart mm WHERE mm.name = p_mart;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown mart %', p_mart
            USING HINT = 'run `alembic upgrade head`, or choose one of bioloupe_views.mart';
    END IF;
    IF p_concurrently AND v_populated THEN
        EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY public.%I', p_mart);
        v_mode := 'concurrent';
    ELSE
        EXECUTE format('REFRESH MATERIALIZED VIEW public.%I', p_mart);
        v_mode := 'plain';
    END IF;
    EXECUTE format('ANALYZE public.%I', p_mart);
    EXECUTE format('SELECT count(*) FROM public.%I', p_mart) INTO v_rows;
    IF p_checks THEN
        SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]'::jsonb) INTO v_checks
        FROM bioloupe_views.run_checks(p_mart) r;
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_checks) e WHERE (e->>'blocks')::boolean) THEN
            v_status := 'check_failed';
        END IF;
    END IF;
    RETURN jsonb_build_object(
        'mart', p_mart, 'status', v_status, 'mode', v_mode,
        'fallback', p_concurrently AND NOT v_populated, 'rows', v_rows,
        'started_at', v_started, 'ended_at', clock_timestamp(), 'checks', v_checks);
END;
$$;

-- Record one mart's outcome in the run log.
CREATE FUNCTION bioloupe_views.log_result(p_run uuid, p_trigger text, p_result jsonb)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO bioloupe_views.run_log
        (run_id, mart, started_at, ended_at, duration_seconds, mode, rows, status, error,
         trigger, checks)
    VALUES (
        p_run, p_result->>'mart',
        (p_result->>'started_at')::timestamptz, (p_result->>'ended_at')::timestamptz,
        extract(epoch FROM (p_result->>'ended_at')::timestamptz
                          - (p_result->>'started_at')::timestamptz),
        p_result->>'mode', (p_result->>'rows')::bigint, p_result->>'status',
        p_result->>'error', p_trigger, p_result->'checks');
$$;

-- The one lock that serialises refreshes, from the CLI and from pg_cron alike: a session
-- advisory lock, so it spans the per-mart transactions and dies with the session.
CREATE FUNCTION bioloupe_views.try_refresh_lock() RETURNS boolean
LANGUAGE sql AS $$ SELECT pg_try_advisory_lock(1651470447, 1) $$;

CREATE FUNCTION bioloupe_views.release_refresh_lock() RETURNS boolean
LANGUAGE sql AS $$ SELECT pg_advisory_unlock(1651470447, 1) $$;

-- Who holds the refresh lock, for the message a second run prints.
CREATE FUNCTION bioloupe_views.refresh_lock_holder()
RETURNS TABLE (pid integer, application_name text, trigger text, run_id uuid, since timestamptz)
LANGUAGE sql AS $$
    SELECT l.pid, a.application_name, r.trigger, r.run_id,
           coalesce(r.started_at, a.backend_start)
    FROM pg_locks l
    LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    LEFT JOIN bioloupe_views.run r ON r.pid = l.pid AND r.status = 'running'
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.classid = 1651470447 AND l.objid = 1 AND l.objsubid = 2
    ORDER BY r.started_at DESC NULLS LAST
    LIMIT 1
$$;

-- Start a run; call it holding the refresh lock. No other run can then be alive, so a run
-- still marked 'running' lost its session (connection dropped, backend terminated) before
-- it could finish: it is closed as an error first.
CREATE FUNCTION bioloupe_views.start_run(p_trigger text) RETURNS uuid
LANGUAGE sql AS $$
    UPDATE bioloupe_views.run
    SET status = 'error', ended_at = clock_timestamp(),
        message = 'abandoned: its session ended before the run finished'
    WHERE status = 'running';
    INSERT INTO bioloupe_views.run (run_id, trigger, status)
    VALUES (gen_random_uuid(), p_trigger, 'running')
    RETURNING run_id
$$;

CREATE FUNCTION bioloupe_views.finish_run(p_run uuid, p_status text, p_message text DEFAULT NULL)
RETURNS void
LANGUAGE sql AS $$
    UPDATE bioloupe_views.run
    SET ended_at = clock_timestamp(), status = p_status, message = p_message
    WHERE run_id = p_run
$$;

-- The in-database refresh, for pg_cron: `CALL bioloupe_views.refresh_all()`. Same order,
-- modes, checks, lock and run log as `refresh-views`: each mart is refreshed and audited in
-- its own transaction, rolled back when an error-severity check fails, and its dependents
-- are skipped. A run that finds the lock taken records itself as skipped and does nothing,
-- so pg_cron's queued late runs are harmless. pg_cron commits inside a procedure only when
-- the job's command is this single CALL.
CREATE PROCEDURE bioloupe_views.refresh_all(
    p_marts text[] DEFAULT NULL,
    p_concurrently boolean DEFAULT true,
    p_checks boolean DEFAULT true,
    p_trigger text DEFAULT 'pg_cron')
LANGUAGE plpgsql AS $$
DECLARE
    v_run uuid;
    v_mart text;
    v_result jsonb;
    v_blocked text[] := '{}';
    v_failed integer := 0;
    v_order text[];
BEGIN
    IF NOT bioloupe_views.try_refresh_lock() THEN
        INSERT INTO bioloupe_views.run (run_id, trigger, status, ended_at, message)
        VALUES (gen_random_uuid(), p_trigger, 'skipped', clock_timestamp(),
                'another refresh held the lock');
        COMMIT;
        RAISE NOTICE 'bioloupe_views: another refresh is running; this run is skipped';
        RETURN;
    END IF;
    v_run := bioloupe_views.start_run(p_trigger);
    COMMIT;
    -- Read the order up front: the loop commits and rolls back, which a query loop may not.
    SELECT coalesce(array_agg(o.mart ORDER BY o.level, o.mart), '{}') INTO v_order
    FROM bioloupe_views.refresh_order o
    WHERE p_marts IS NULL OR o.mart = ANY (p_marts);
    FOREACH v_mart IN ARRAY v_order
    LOOP
        IF EXISTS (SELECT 1 FROM bioloupe_views.mart_dependency d
                   WHERE d.mart = v_mart AND d.depends_on = ANY (v_blocked)) THEN
            v_result := jsonb_build_object('mart', v_mart, 'status', 'skipped',
                'error', 'skipped: an upstream mart failed');
        ELSE
            BEGIN
                v_result := bioloupe_views.refresh_mart(v_mart, p_concurrently, p_checks);
            EXCEPTION WHEN OTHERS THEN
                v_result := jsonb_build_object('mart', v_mart, 'status', 'error',
                    'error', SQLERRM, 'ended_at', clock_timestamp());
            END;
        END IF;
        IF v_result->>'status' = 'success' THEN
            COMMIT;
        ELSE
            ROLLBACK;
            v_blocked := v_blocked || v_mart;
            v_failed := v_failed + 1;
        END IF;
        PERFORM bioloupe_views.log_result(v_run, p_trigger, v_result);
        COMMIT;
    END LOOP;
    PERFORM bioloupe_views.finish_run(v_run, CASE WHEN v_failed = 0 THEN 'success' ELSE 'error' END);
    PERFORM bioloupe_views.release_refresh_lock();
    COMMIT;
END;
$$;
