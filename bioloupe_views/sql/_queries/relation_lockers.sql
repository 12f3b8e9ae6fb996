-- The other sessions holding a lock on a relation that VACUUM (SHARE UPDATE EXCLUSIVE)
-- would wait for, with who they are and what they run. A prepared transaction holds
-- locks without a session (pid NULL).
--
-- %(relation)s: the relation as a regclass literal.
SELECT l.pid, a.usename, a.application_name, a.state, a.query, l.mode
FROM pg_catalog.pg_locks l
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted
  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                    WHERE d.datname = pg_catalog.current_database())
  AND l.relation = %(relation)s::regclass
  AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()
  AND l.mode IN ('ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock',
                 'ExclusiveLock', 'AccessExclusiveLock')
ORDER BY l.pid NULLS LAST;
