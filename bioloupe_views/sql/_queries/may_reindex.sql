-- Whether the current role may REINDEX one mart: its owner (or a member of the owner's role,
-- superusers included), or on 17+ a role with MAINTAIN on it (pg_maintain among them).
-- Unlike VACUUM, REINDEX TABLE is not the database owner's.
--
-- %(mart)s: the mart as a regclass literal.
SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE')
       OR CASE WHEN pg_catalog.current_setting('server_version_num')::int >= 170000
               THEN pg_catalog.has_table_privilege(c.oid, 'MAINTAIN')
               ELSE false END
FROM pg_catalog.pg_class c
WHERE c.oid = %(mart)s::regclass;
