-- The invalid index copies (*_ccnew*) that an interrupted or abandoned
-- REINDEX ... CONCURRENTLY left on one mart: every refresh would otherwise keep them up to date.
--
-- %(schema)s, %(mart)s: the mart.
SELECT ic.relname
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = %(schema)s AND t.relname = %(mart)s AND NOT i.indisvalid
  AND ic.relname LIKE '%%\_ccnew%%';
