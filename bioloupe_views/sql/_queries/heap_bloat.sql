-- One mart's heap, and the heap a fresh build of its rows would take.
--
-- The fresh size is exact up to page packing: every live row's stored size (pg_column_size
-- of the whole row counts the tuple header and compressed values as stored) plus its 4-byte
-- line pointer, packed into 8 kB pages less their 24-byte header. Against fresh builds of
-- the five marts it came out 1 to 4 percent under the real heap, so the ratio errs towards "bloated"
-- by at most that. It reads the whole mart: the caller runs it only on marts small enough to
-- rewrite.
--
-- {mart}: the mart, quoted by the caller; %(mart)s: the same as a regclass literal.
SELECT pg_catalog.pg_relation_size(%(mart)s::regclass) AS actual_bytes,
       (SELECT (pg_catalog.ceil(coalesce(pg_catalog.sum(pg_catalog.pg_column_size(m.*) + 4), 0)
                                / (8192 - 24)) * 8192)::bigint
        FROM {mart} m) AS fresh_bytes;
