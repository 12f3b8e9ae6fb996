-- Whether a mart must be refreshed by a --changed-only run, and why. It is unchanged only
-- when all of these hold, else it is refreshed:
--   * it is populated and has a successful refresh at its current version, made after the
--     migration that installed that version (its baseline);
--   * every source its query or its checks read is tracked (mart_inputs.tracked), and was
--     already tracked when the baseline was taken (source_tracking, kept by
--     note_source_tracking(): writes made while a source was not tracked left no trace);
--   * no change row of those sources is invisible to the baseline's snapshot: rows of
--     writers that were still running, or committed after it, count as changes;
--   * no upstream mart it (or a check) reads was refreshed after that snapshot, in this run
--     or another (its refresh's transaction id, against the same snapshot; for a mart only
--     its checks read, against the snapshot its checks started from, when recorded);
--     an upstream published in the same transaction as the mart (a swap group, an atomic
--     run) is what the mart was built from, not a change.
-- Only what a refresh's snapshot could not see counts, so a write committed before a run
-- starts is never missed, and pg_stat counters play no part. Cheap: catalog lineage and
-- index lookups in the change log, no count and no refresh.
CREATE FUNCTION bioloupe_views.mart_change(
    p_mart text, OUT changed boolean, OUT reason text, OUT since timestamptz)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_version integer;
    v_populated boolean;
    v_migrated timestamptz;
    v_base record;
    v_what text;
BEGIN
    changed := true;
    SELECT mm.version, mm.populated, m.migrated_at INTO v_version, v_populated, v_migrated
    FROM bioloupe_views.managed_mart mm JOIN bioloupe_views.mart m ON m.name = mm.name
    WHERE mm.name = p_mart;
    IF NOT coalesce(v_populated, false) THEN
        reason := 'unpopulated';
        RETURN;
    END IF;
    SELECT l.id, l.run_id, l.snapshot, l.check_snapshot, l.version, l.started_at,
           l.ended_at, l.xid INTO v_base
    FROM bioloupe_views.run_log l
    WHERE l.mart = p_mart AND l.status = 'success'
    ORDER BY l.id DESC LIMIT 1;
    IF v_base.snapshot IS NULL OR v_base.version IS DISTINCT FROM v_version
       OR v_base.started_at < v_migrated THEN
        reason := pg_catalog.format('no earlier refresh of version %s recorded', v_version);
        RETURN;
    END IF;
    since := v_base.ended_at;
    SELECT pg_catalog.string_agg(i.relation, ', ' ORDER BY i.relation) INTO v_what
    FROM bioloupe_views.mart_inputs i
    WHERE i.mart = p_mart AND i.upstream IS NULL AND NOT i.tracked;
    IF v_what IS NOT NULL THEN
        reason := 'untracked source ' || v_what;
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(i.relation, ', ' ORDER BY i.relation) INTO v_what
    FROM bioloupe_views.mart_inputs i
    WHERE i.mart = p_mart AND i.upstream IS NULL
      AND NOT EXISTS (SELECT 1 FROM bioloupe_views.source_tracking t
                      WHERE t.relid = i.relid
                        AND pg_catalog.pg_visible_in_snapshot(t.xid, v_base.snapshot));
    IF v_what IS NOT NULL THEN
        reason := 'tracking of source ' || v_what || ' started after its last refresh';
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(i.relation, ', ' ORDER BY i.relation) INTO v_what
    FROM bioloupe_views.mart_inputs i
    WHERE i.mart = p_mart AND i.upstream IS NULL
      AND EXISTS (SELECT 1 FROM bioloupe_views.source_change c
                  WHERE c.relid = i.relid
                    AND c.xid >= pg_catalog.pg_snapshot_xmin(v_base.snapshot)
                    AND NOT pg_catalog.pg_visible_in_snapshot(c.xid, v_base.snapshot));
    IF v_what IS NOT NULL THEN
        reason := 'source ' || v_what || ' changed';
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(i.upstream, ', ' ORDER BY i.upstream) INTO v_what
    FROM bioloupe_views.mart_inputs i
    WHERE i.mart = p_mart AND i.upstream IS NOT NULL
      AND EXISTS (SELECT 1 FROM bioloupe_views.run_log u
                  WHERE u.mart = i.upstream AND u.status = 'success'
                    AND (u.id > v_base.id OR u.run_id = v_base.run_id)
                    AND u.xid IS DISTINCT FROM v_base.xid
                    AND (u.xid IS NULL
                         OR NOT pg_catalog.pg_visible_in_snapshot(u.xid,
                             CASE WHEN EXISTS (SELECT 1 FROM bioloupe_views.mart_dependency d
                                               WHERE d.mart = p_mart AND d.depends_on = i.upstream)
                                  THEN v_base.snapshot
                                  ELSE coalesce(v_base.check_snapshot, v_base.snapshot) END)));
    IF v_what IS NOT NULL THEN
        reason := 'upstream ' || v_what || ' refreshed';
        RETURN;
    END IF;
    changed := false;
    reason := 'unchanged since ' || pg_catalog.to_char(v_base.ended_at, 'YYYY-MM-DD HH24:MI:SS');
END;
$$;
