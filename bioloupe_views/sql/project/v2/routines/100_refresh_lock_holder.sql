-- Who holds the refresh lock, and the one message every client prints when it is taken.
-- `since` is the holder's run start, or its session start when it has no running run (a
-- session that took the lock by hand, or a run of another role); it can be NULL when this
-- role may not see the holder's session.
CREATE FUNCTION bioloupe_views.refresh_lock_holder()
RETURNS TABLE (pid integer, application_name text, trigger text, run_id uuid,
               since timestamptz, message text)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.pid, a.application_name, r.trigger, r.run_id,
           coalesce(r.started_at, a.backend_start),
           'another refresh holds the lock: pid ' || l.pid
           || ' (' || coalesce(r.trigger, nullif(a.application_name, ''), 'unknown client') || ')'
           || coalesce(', running since '
                       || to_char(coalesce(r.started_at, a.backend_start), 'YYYY-MM-DD HH24:MI:SS TZ'),
                       '')
    FROM pg_catalog.pg_locks l
    LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
    LEFT JOIN bioloupe_views.run r ON r.pid = l.pid AND r.status = 'running'
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.classid = 1651470447 AND l.objid = 1 AND l.objsubid = 2
    ORDER BY r.started_at DESC NULLS LAST
    LIMIT 1
$$;
