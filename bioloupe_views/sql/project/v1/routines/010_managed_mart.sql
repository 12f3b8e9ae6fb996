-- The registered marts that exist as materialized views in public.
CREATE VIEW bioloupe_views.managed_mart AS
SELECT m.name, m.version, c.oid AS relid, c.relispopulated AS populated
FROM bioloupe_views.mart m
JOIN pg_namespace n ON n.nspname = 'public'
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = m.name AND c.relkind = 'm';
