-- The registered marts with a check whose view (or whose one-scan batch view, project schema
-- v3 on) is missing from the checks' schema: a DROP ... CASCADE of a mart takes every check
-- view that reads it, whichever mart the check belongs to. Project schema v2 on (mart_check).
-- Parameter: checks_schema.
SELECT DISTINCT m.name, m.version
FROM bioloupe_views.mart m
JOIN bioloupe_views.mart_check mc ON mc.mart = m.name
CROSS JOIN LATERAL (VALUES (mc.relation::text),
                           (pg_catalog.to_jsonb(mc) ->> 'batch_relation')) r(relation)
WHERE r.relation IS NOT NULL
  AND NOT EXISTS (SELECT 1
                  FROM pg_catalog.pg_class c
                  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = %(checks_schema)s AND c.relname = r.relation)
ORDER BY m.name
