-- One mart's size (heap, TOAST and indexes), its heap's file (a rewrite gives it a new one),
-- and whether the current role may rewrite it with VACUUM FULL: its owner (or a member of
-- the owner's role, superusers included), the database's owner, or on 17+ a role with
-- MAINTAIN on it (pg_maintain among them). Without the right VACUUM only warns and skips.
--
-- %(mart)s: the mart as a regclass literal.
SELECT pg_catalog.pg_total_relation_size(c.oid) AS total_bytes,
       pg_catalog.pg_relation_filenode(c.oid) AS filenode,
       pg_catalog.pg_has_role(c.relowner, 'USAGE')
       OR pg_catalog.pg_has_role(d.datdba, 'USAGE')
       OR CASE WHEN pg_catalog.current_setting('server_version_num')::int >= 170000
               THEN pg_catalog.has_table_privilege(c.oid, 'MAINTAIN')
               ELSE false END AS may_rewrite
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_database d ON d.datname = pg_catalog.current_database()
WHERE c.oid = %(mart)s::regclass;
