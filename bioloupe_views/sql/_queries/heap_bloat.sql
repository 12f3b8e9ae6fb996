-- One mart's heap, and the heap a fresh build of its rows would take.
--
-- The fresh size is exact up to page packing: every live row's stored size (pg_column_size
-- of the whole row counts the tuple header and compressed values as stored) plus its 4-byte
-- line pointer, packed into 8 kB pages less their 24-byte header, and at least one page
-- when there are rows. Against fresh builds of the five marts it came out 1 to 4 percent
-- under the real heap, so the ratio errs towards "bloated" by at most that. Values moved out
-- of line (TOAST) count here but live outside the heap, so for those the ratio errs the
-- other way. It reads the whole mart: the caller runs it only on marts small enough to
-- rewrite.
--
-- {mart}: the mart, quoted by the caller; %(mart)s: the same as a regclass literal.
SELECT pg_catalog.pg_relation_size(%(mart)s::regclass) AS actual_bytes,
       (SELECT CASE WHEN pg_catalog.count(*) = 0 THEN 0
                    ELSE pg_catalog.ceil(pg_catalog.sum(pg_catalog.pg_column_size(m.*) + 4)
                                         / (8192 - 24)::numeric)::bigint * 8192 END
        FROM {mart} m) AS fresh_bytes;
