-- How long each mart holds up the end of a full run: its own last successful refresh time
-- plus the longest chain of marts that wait for it (critical path). start_run() queues the
-- longest chains first, so on few cores mv_development_programs, which two marts wait for,
-- does not queue behind marts nothing waits for. Marts never refreshed count as 0 s and
-- keep the (level, name) order.
CREATE VIEW bioloupe_views.refresh_priority AS
WITH RECURSIVE last_seconds AS (
    SELECT mm.name AS mart,
           coalesce((SELECT l.duration_seconds FROM bioloupe_views.run_log l
                     WHERE l.mart = mm.name AND l.status = 'success'
                     ORDER BY l.id DESC LIMIT 1), 0) AS seconds
    FROM bioloupe_views.managed_mart mm
),
chain(mart, seconds) AS (
    SELECT s.mart, s.seconds FROM last_seconds s
    UNION ALL
    SELECT dep.depends_on, chain.seconds + s.seconds
    FROM chain
    JOIN bioloupe_views.mart_dependency dep ON dep.mart = chain.mart
    JOIN last_seconds s ON s.mart = dep.depends_on
)
SELECT mart, max(seconds) AS seconds
FROM chain
GROUP BY mart;
