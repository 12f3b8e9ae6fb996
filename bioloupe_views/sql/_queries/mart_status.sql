-- One row per mart, in refresh order, for `bioloupe-views status`: the catalog's view of it
-- (populated, estimated rows, size with indexes) beside the run log's (last finished attempt,
-- last check results, last success). A run in progress is not a mart's last attempt: its
-- pending and running rows are left out here, and status shows them apart.
--
-- The one definition of a mart's last successful build, `fresh_as_of`, which the STALE
-- column (stale_seconds) and `status --max-age` both read: the later of its last successful
-- refresh (or a --changed-only run that found its inputs unchanged, which proves it current
-- then) and the migration that built it populated (a new mart, or a new version of one: the
-- migration ran its query, so its data is as of then). NULL for an unpopulated mart.
-- `built_by_migration` says which of the two it is.
SELECT o.mart,
       o.level,
       mm.version,
       mm.populated,
       c.reltuples::bigint                              AS estimated_rows,  -- -1: never analyzed
       pg_total_relation_size(c.oid)                    AS size_bytes,
       pg_size_pretty(pg_total_relation_size(c.oid))    AS size,
       last.run_id::text                                AS run_id,
       last.started_at,
       last.ended_at,
       last.duration_seconds::float8                    AS duration_seconds,
       last.mode,
       last.status,
       last.trigger,
       last.error,
       chk.checks,
       chk.ended_at                                     AS checks_at,
       ok.ended_at                                      AS last_success_at,
       ok.duration_seconds::float8                      AS success_duration_seconds,
       ok.mode                                          AS success_mode,
       ok.trigger                                       AS success_trigger,
       m.migrated_at,
       CASE WHEN mm.populated THEN greatest(ok.ended_at, m.migrated_at) END AS fresh_as_of,
       mm.populated AND m.migrated_at IS NOT NULL
           AND (ok.ended_at IS NULL OR m.migrated_at > ok.ended_at)  AS built_by_migration,
       CASE WHEN mm.populated
            THEN extract(epoch FROM now() - greatest(ok.ended_at, m.migrated_at))::float8
       END                                              AS stale_seconds
FROM bioloupe_views.refresh_order o
JOIN bioloupe_views.managed_mart mm ON mm.name = o.mart
JOIN bioloupe_views.mart m ON m.name = o.mart
JOIN pg_class c ON c.oid = mm.relid
LEFT JOIN LATERAL (
    SELECT l.* FROM bioloupe_views.run_log l
    WHERE l.mart = o.mart AND l.status NOT IN ('pending', 'running')  -- finished attempts
    ORDER BY l.id DESC LIMIT 1
) last ON true
LEFT JOIN LATERAL (
    SELECT l.checks, l.ended_at FROM bioloupe_views.run_log l
    WHERE l.mart = o.mart AND jsonb_typeof(l.checks) = 'array'  -- not SQL or JSON null
    ORDER BY l.id DESC LIMIT 1
) chk ON true
LEFT JOIN LATERAL (
    SELECT l.ended_at, l.duration_seconds, l.mode, l.trigger FROM bioloupe_views.run_log l
    WHERE l.mart = o.mart AND l.status IN ('success', 'unchanged')  -- unchanged: as fresh
    ORDER BY l.id DESC LIMIT 1
) ok ON true
ORDER BY o.level, o.mart
