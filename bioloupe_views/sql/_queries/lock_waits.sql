-- The marts of a run whose session has waited on a lock for at least %(seconds)s seconds,
-- with each session it waits for (pg_blocking_pids): who it is and what it runs. Only
-- marts still running; a wait that started before PostgreSQL 14 (no waitstart) counts from
-- the session's last state change.
SELECT l.mart, b.pid, b.usename, b.application_name, b.state, b.query, NULL::text AS mode,
       pg_catalog.floor(extract(epoch FROM pg_catalog.now() - w.since))::integer AS waited
FROM bioloupe_views.run_log l
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
CROSS JOIN LATERAL (
    SELECT coalesce((SELECT pg_catalog.min(k.waitstart) FROM pg_catalog.pg_locks k
                     WHERE k.pid = a.pid AND NOT k.granted), a.state_change) AS since) w
CROSS JOIN LATERAL pg_catalog.unnest(pg_catalog.pg_blocking_pids(a.pid)) AS blocker(pid)
LEFT JOIN pg_catalog.pg_stat_activity b ON b.pid = blocker.pid
WHERE l.run_id = %(run)s AND l.status = 'running' AND a.wait_event_type = 'Lock'
  AND w.since <= pg_catalog.now() - pg_catalog.make_interval(secs => %(seconds)s)
ORDER BY l.position, b.pid
