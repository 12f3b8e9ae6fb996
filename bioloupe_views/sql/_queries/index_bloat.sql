-- Each B-tree index of one mart, its size, and the size a fresh build of it would take.
--
-- The fresh size is estimated the way the classic btree-bloat queries do: the table's row
-- count (reltuples, current after the refresh's ANALYZE) times the width of one index entry
-- (the columns' average widths from pg_stats, an 8-byte tuple header, MAXALIGN, a 4-byte
-- line pointer), packed into 8 kB pages at the index's fillfactor (90 by default), plus one
-- page in about 300 for the inner levels and the metapage. Deduplication makes a non-unique
-- index smaller than this, so the estimate errs towards "not bloated", never the other way.
-- Indexes with expression columns (no pg_stats) and invalid ones are left out.
--
-- %(schema)s, %(mart)s: the mart.
WITH idx AS (
    SELECT i.indexrelid, ic.relname AS index_name, t.reltuples,
           pg_relation_size(i.indexrelid) AS actual_bytes,
           coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(ic.reloptions) o
                     WHERE o LIKE 'fillfactor=%%'), 90) AS fillfactor,
           i.indkey::int2[] AS columns, t.oid AS table_oid
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
    JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = %(schema)s AND t.relname = %(mart)s
      AND i.indisvalid AND 0 <> ALL (i.indkey::int2[])
), width AS (
    SELECT idx.indexrelid, sum(coalesce(s.avg_width, 8)) AS data_bytes,
           count(s.avg_width) = count(*) AS have_stats
    FROM idx
    CROSS JOIN LATERAL unnest(idx.columns) AS k(attnum)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = idx.table_oid AND a.attnum = k.attnum
    LEFT JOIN pg_catalog.pg_stats s ON s.schemaname = %(schema)s AND s.tablename = %(mart)s
                                   AND s.attname = a.attname
    GROUP BY idx.indexrelid
)
SELECT idx.index_name, idx.actual_bytes,
       (8192 * (1 + ceil(idx.reltuples * entry.bytes
                         / ((8192 - 24 - 16) * idx.fillfactor / 100.0)) * 301 / 300))::bigint
           AS fresh_bytes
FROM idx
JOIN width USING (indexrelid)
CROSS JOIN LATERAL (SELECT (ceil((8 + width.data_bytes) / 8.0) * 8 + 4) AS bytes) entry
WHERE width.have_stats AND idx.reltuples > 0
ORDER BY idx.index_name;
