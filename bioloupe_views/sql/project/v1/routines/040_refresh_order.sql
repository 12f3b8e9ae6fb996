-- Each mart's level: 0 for marts that read only sources, else one more than its deepest
-- upstream mart. Refreshing in (level, mart) order respects every dependency.
CREATE VIEW bioloupe_views.refresh_order AS
WITH RECURSIVE depth(mart, level) AS (
    SELECT name, 0 FROM bioloupe_views.managed_mart
    UNION ALL
    SELECT dep.mart, depth.level + 1
    FROM depth
    JOIN bioloupe_views.mart_dependency dep ON dep.depends_on = depth.mart
)
SELECT mart, max(level) AS level
FROM depth
GROUP BY mart;
