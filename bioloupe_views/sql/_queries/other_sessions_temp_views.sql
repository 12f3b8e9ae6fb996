-- Of the given views, those in another session's temporary schema: the view, its owner,
-- and the owner's sessions (pid, application, since when), which are the ones that can let
-- go of it. pg_temp_N does not say which backend holds it on every server version, so the
-- owner's sessions are listed.
SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname),
       pg_catalog.pg_get_userbyid(c.relowner),
       (SELECT pg_catalog.string_agg(pg_catalog.format('pid %%s, application %%L, connected %%s',
                                                       a.pid, a.application_name,
                                                       pg_catalog.to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS')),
                                     '; ' ORDER BY a.pid)
        FROM pg_catalog.pg_stat_activity a
        WHERE a.usesysid = c.relowner AND a.pid <> pg_catalog.pg_backend_pid())
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = ANY (%s::pg_catalog.oid[])
  AND n.nspname LIKE 'pg\_temp\_%%'
  AND n.oid <> pg_catalog.pg_my_temp_schema()
ORDER BY 1
