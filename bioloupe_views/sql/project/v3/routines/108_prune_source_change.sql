-- Delete the source change rows that can no longer make a mart change: those that the last
-- recorded refresh snapshot of every mart reading their table already saw. A mart with no
-- such snapshot yet will be refreshed anyway, by a later snapshot that sees every committed
-- row. Called by start_run(), so the log stays bounded with no job of its own. SECURITY
-- DEFINER: the refresher role reads the log but only the owner deletes from it.
CREATE FUNCTION bioloupe_views.prune_source_change()
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
WITH baseline AS MATERIALIZED (
    SELECT i.relid, b.snapshot
    FROM bioloupe_views.mart_inputs i
    CROSS JOIN LATERAL (
        SELECT l.snapshot FROM bioloupe_views.run_log l
        WHERE l.mart = i.mart AND l.status = 'success'
        ORDER BY l.id DESC LIMIT 1) b
    WHERE i.upstream IS NULL AND b.snapshot IS NOT NULL)
DELETE FROM bioloupe_views.source_change c
WHERE NOT EXISTS (SELECT 1 FROM baseline b
                  WHERE b.relid = c.relid
                    AND NOT pg_catalog.pg_visible_in_snapshot(c.xid, b.snapshot));
$$;
