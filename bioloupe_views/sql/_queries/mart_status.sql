-- One row per mart, in refresh order, for `bioloupe-views status`: the catalog's view of it
-- (populated, estimated rows, size with indexes) beside the run log's (last attempt, last
-- check results, last success). Staleness is the time since the data was last built: the
-- last successful refresh (or a --changed-only run that found its inputs unchanged, which
-- proves it current then), or the migration that created the mart populated if that is
-- later (a new mart, or a new version of one). An unpopulated mart has no staleness.
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
       m.migrated_at,
       CASE WHEN mm.populated THEN greatest(ok.ended_at, m.migrated_at) END AS fresh_as_of,
       CASE WHEN mm.populated
            THEN extract(epoch FROM now() - greatest(ok.ended_at, m.migrated_at))::float8
       END                                              AS stale_seconds
FROM bioloupe_views.refresh_order o
JOIN bioloupe_views.managed_mart mm ON mm.name = o.mart
JOIN bioloupe_views.mart m ON m.name = o.mart
JOIN pg_class c ON c.oid = mm.relid
LEFT JOIN LATERAL (
    SELECT l.* FROM bioloupe_views.run_log l WHERE l.mart = o.mart ORDER BY l.id DESC LIMIT 1
) last ON true
LEFT JOIN LATERAL (
    SELECT l.checks, l.ended_at FROM bioloupe_views.run_log l
    WHERE l.mart = o.mart AND jsonb_typeof(l.checks) = 'array'  -- not SQL or JSON null
    ORDER BY l.id DESC LIMIT 1
) chk ON true
LEFT JOIN LATERAL (
    SELECT l.ended_at FROM bioloupe_views.run_log l
    WHERE l.mart = o.mart AND l.status IN ('success', 'unchanged')  -- unchanged: as fresh
    ORDER BY l.id DESC LIMIT 1
) ok ON true
ORDER BY o.level, o.mart
