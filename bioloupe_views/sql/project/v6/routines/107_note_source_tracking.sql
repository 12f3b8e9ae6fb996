-- Reconcile bioloupe_views.source_tracking with the tracked sources as they are now, before
-- a run decides what changed (start_run()). A source whose tracking began, or whose trigger
-- is not the one recorded (recreated, or disabled and enabled again), starts
-- tracking anew: recorded with this transaction, plus a change row of it, which no earlier
-- refresh's snapshot can see, so every mart reading the source is refreshed once. A source no
-- longer tracked is forgotten, so tracking it again is a new start. SECURITY DEFINER: the
-- refresher role starts runs but only the owner writes the record.
CREATE FUNCTION bioloupe_views.note_source_tracking()
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
WITH tracked AS MATERIALIZED (
    SELECT DISTINCT ON (c.oid) c.oid AS relid, t.oid AS trigger_oid,
           t.xmin::pg_catalog.text AS trigger_xmin
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    WHERE t.tgfoid = 'bioloupe_views.log_source_change()'::pg_catalog.regprocedure
      AND bioloupe_views.source_tracked(c.oid)
    ORDER BY c.oid, t.oid
), forgotten AS (
    DELETE FROM bioloupe_views.source_tracking s
    WHERE NOT EXISTS (SELECT 1 FROM tracked n WHERE n.relid = s.relid)
), started AS (
    INSERT INTO bioloupe_views.source_tracking AS s
        (relid, trigger_oid, trigger_xmin, since, xid)
    SELECT n.relid, n.trigger_oid, n.trigger_xmin,
           pg_catalog.clock_timestamp(), pg_catalog.pg_current_xact_id()
    FROM tracked n
    ON CONFLICT (relid) DO UPDATE
    SET trigger_oid = excluded.trigger_oid, trigger_xmin = excluded.trigger_xmin,
        since = excluded.since, xid = excluded.xid
    WHERE (s.trigger_oid, s.trigger_xmin)
          IS DISTINCT FROM (excluded.trigger_oid, excluded.trigger_xmin)
    RETURNING s.relid)
INSERT INTO bioloupe_views.source_change (relid, xid)
SELECT started.relid, pg_catalog.pg_current_xact_id() FROM started;
$$;
