-- Sessions of this tool (refresh-views, bioloupe-views ...) that hold what a refresh waits
-- for, yet belong to no live run: a lock on a mart stronger than a reader's (a refresh, a
-- VACUUM, a swap), or the refresh lock. Typically a worker whose client died mid-refresh.
-- Live, and so never listed: the session running this query; the main session of a running
-- run (it holds the refresh lock; `status` shows it as the refresh running now), and every
-- session that connected after that run started (its workers; earlier sessions cannot be);
-- a migration holding the refresh lock (bioloupe-views alembic), which is the run of its own.
-- Age is the time since the session connected.
--
-- %(schema)s: the schema of the marts.
WITH fence AS (
    SELECT l.pid
    FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                        WHERE d.datname = pg_catalog.current_database())
      AND l.classid = 1651470447 AND l.objid = 1 AND l.objsubid = 2
), live_run AS (
    SELECT r.pid, r.started_at
    FROM bioloupe_views.run r
    WHERE r.status = 'running' AND r.pid IN (SELECT f.pid FROM fence f)
), held AS (
    SELECT f.pid, 'the refresh lock' AS what, 0 AS rank FROM fence f
    UNION ALL
    -- the strongest lock each session holds on each mart
    SELECT * FROM (
        SELECT DISTINCT ON (l.pid, l.relation)
               l.pid, l.mode || ' on ' || pg_catalog.quote_ident(n.nspname) || '.'
                      || pg_catalog.quote_ident(c.relname), 1
        FROM pg_catalog.pg_locks l
        JOIN pg_catalog.pg_class c ON c.oid = l.relation
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE l.locktype = 'relation' AND l.granted AND l.mode <> 'AccessShareLock'
          AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                            WHERE d.datname = pg_catalog.current_database())
          AND n.nspname = %(schema)s
          AND c.relname IN (SELECT m.name FROM bioloupe_views.mart m)
        ORDER BY l.pid, l.relation,
                 pg_catalog.array_position(ARRAY['RowShareLock', 'RowExclusiveLock',
                     'ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock',
                     'ExclusiveLock', 'AccessExclusiveLock'], l.mode) DESC
    ) strongest
)
SELECT a.pid, a.application_name, a.state,
       extract(epoch FROM pg_catalog.now() - a.backend_start)::float8 AS age_seconds,
       pg_catalog.array_agg(h.what ORDER BY h.rank, h.what) AS holds
FROM held h
JOIN pg_catalog.pg_stat_activity a ON a.pid = h.pid
WHERE a.pid <> pg_catalog.pg_backend_pid()
  AND (a.application_name = 'refresh-views' OR a.application_name LIKE 'bioloupe-views%%')
  AND NOT EXISTS (SELECT 1 FROM live_run r
                  WHERE (r.pid = a.pid AND a.backend_start <= r.started_at)
                     OR a.backend_start >= r.started_at)
  AND NOT (a.application_name = 'bioloupe-views alembic' AND a.pid IN (SELECT f.pid FROM fence f))
GROUP BY a.pid, a.application_name, a.state, a.backend_start
ORDER BY a.backend_start, a.pid;
