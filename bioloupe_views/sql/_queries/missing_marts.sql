-- The registered marts (bioloupe_views.mart) that the marts' schema does not hold as a
-- materialized view: nothing of that name (dropped by hand; DROP ... CASCADE takes the marts
-- above it too), or a relation of another kind that took the name (relkind: r a table, v a
-- view, ...). Parameter: mart_schema.
SELECT m.name, m.version, c.relkind::text
FROM bioloupe_views.mart m
LEFT JOIN (pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n
             ON n.oid = c.relnamespace AND n.nspname = %(mart_schema)s)
       ON c.relname = m.name
WHERE c.relkind IS DISTINCT FROM 'm'
ORDER BY m.name
