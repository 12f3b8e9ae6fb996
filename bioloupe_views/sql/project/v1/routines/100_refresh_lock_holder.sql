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
