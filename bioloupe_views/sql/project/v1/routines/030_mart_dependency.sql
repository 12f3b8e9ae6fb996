-- Which mart reads which: the dependency order's one source.
CREATE VIEW bioloupe_views.mart_dependency AS
SELECT DISTINCT r.mart, up.name AS depends_on
FROM bioloupe_views.mart_reads r
JOIN bioloupe_views.managed_mart up ON up.relid = r.relid
WHERE up.name <> r.mart;
