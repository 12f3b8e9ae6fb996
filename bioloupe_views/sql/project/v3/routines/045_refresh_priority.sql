-- How long each mart holds up the end of a full run: its own last successful refresh time
-- plus the longest chain of marts that wait for it (critical path). start_run() queues the
-- longest chains first, so on few cores mv_development_programs, which two marts wait for,
-- does not queue behind marts nothing waits for. A mart whose checks read another mart
-- (mart_inputs) counts as waiting for it too: refreshed after it, its audit and its
-- changed-only snapshot see the new rows. Marts never refreshed count as 0 s and keep the
-- (level, name) order.
CREATE VIEW bioloupe_views.refresh_priority AS
WITH RECURSIVE last_seconds AS (
    SELECT mm.name AS mart,
           coalesce((SELECT l.duration_seconds FROM bioloupe_views.run_log l
                     WHERE l.mart = mm.name AND l.status = 'success'
                     ORDER BY l.id DESC LIMIT 1), 0) AS seconds
    FROM bioloupe_views.managed_mart mm
),
waits_for(mart, upstream) AS (
    SELECT DISTINCT i.mart, i.upstream FROM bioloupe_views.mart_inputs i
    WHERE i.upstream IS NOT NULL AND i.upstream <> i.mart
),
chain(mart, seconds, depth) AS (
    SELECT s.mart, s.seconds, 0 FROM last_seconds s
    UNION ALL
    SELECT w.upstream, chain.seconds + s.seconds, chain.depth + 1
    FROM chain
    JOIN waits_for w ON w.mart = chain.mart
    JOIN last_seconds s ON s.mart = w.upstream
    WHERE chain.depth < 64  -- checks may read each other's marts: no endless loop
)
SELECT mart, max(seconds) AS seconds
FROM chain
GROUP BY mart;
