-- An index that serves a source index a mart's plan uses: a valid, non-partial btree index on
-- the table whose leading key columns are the wanted columns, in order (a longer index, a
-- unique index or the primary key serves as well). Used by `bioloupe-views doctor`.
-- Parameters: schema, table, columns (text[]). Returns the first such index's name, or none.
SELECT ic.relname AS index_name
FROM pg_index x
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class ic ON ic.oid = x.indexrelid
JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
WHERE n.nspname = %(schema)s
  AND t.relname = %(table)s
  AND x.indisvalid
  AND x.indpred IS NULL
  AND x.indnkeyatts >= cardinality(%(columns)s::text[])
  AND ARRAY(
        SELECT a.attname::text
        FROM unnest((x.indkey::int2[])[0:cardinality(%(columns)s::text[]) - 1])
             WITH ORDINALITY AS k(attnum, position)
        LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        ORDER BY k.position
      ) = %(columns)s::text[]
ORDER BY ic.relname
LIMIT 1
