-- Project schema v3 -> v2: undo upgrade.sql's parts in reverse order. Run history is kept.

-- == changed-only: source change log ======================================================
-- The triggers on the sources call a function of this version: they go first. A trigger on
-- a table the migration's role does not own cannot be dropped by it; then nothing is
-- changed and one line names them and says how their owner removes them.
DO $$
DECLARE
    v_foreign text;
    v_trigger record;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.relname), ', '
                                 ORDER BY n.nspname, c.relname)
    INTO v_foreign
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE t.tgfoid = 'bioloupe_views.log_source_change()'::pg_catalog.regprocedure
      AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE');
    IF v_foreign IS NOT NULL THEN
        RAISE EXCEPTION 'cannot downgrade: the change-tracking triggers on % belong to their tables'' owners; as the owner, run `bioloupe-views track-sources --remove --apply` (or drop trigger bioloupe_views_source_change), then downgrade again', v_foreign;
    END IF;
    FOR v_trigger IN
        SELECT t.tgname, n.nspname, c.relname
        FROM pg_catalog.pg_trigger t
        JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE t.tgfoid = 'bioloupe_views.log_source_change()'::pg_catalog.regprocedure
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %I.%I',
                                  v_trigger.tgname, v_trigger.nspname, v_trigger.relname);
    END LOOP;
END;
$$;
DROP FUNCTION bioloupe_views.log_source_change();
DROP FUNCTION bioloupe_views.record_source_change(oid);
REVOKE USAGE ON SCHEMA bioloupe_views FROM PUBLIC;

-- History is kept: a mart left unchanged by a run is logged as skipped, with why.
UPDATE bioloupe_views.run_log
SET status = 'skipped',
    error = coalesce(error, reason, 'unchanged since its last refresh')
WHERE status = 'unchanged';
DROP INDEX bioloupe_views.run_log_mart_success_idx;
ALTER TABLE bioloupe_views.run_log
    DROP COLUMN snapshot,
    DROP COLUMN xid,
    DROP COLUMN version,
    DROP COLUMN reason,
    DROP COLUMN unchanged_since,
    DROP CONSTRAINT run_log_status_check,
    ADD CONSTRAINT run_log_status_check CHECK (status IN
        ('pending', 'running', 'success', 'error', 'check_failed', 'skipped', 'cancelled'));
DROP TABLE bioloupe_views.source_change;

-- == checks: batched column checks, checks implied by an index ===========================
-- (the batch views are dropped with the checks before this runs)
ALTER TABLE bioloupe_views.mart_check
    DROP COLUMN batch_relation,
    DROP COLUMN batch_column,
    DROP COLUMN implied_by,
    DROP COLUMN implied_columns;
