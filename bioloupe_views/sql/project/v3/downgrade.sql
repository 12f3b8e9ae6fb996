-- Project schema v3 -> v2: undo upgrade.sql's parts in reverse order. Run history is kept.

-- == changed-only: source change log ======================================================
-- (filled in by the changed-only change)

-- == checks: batched column checks, checks implied by an index ===========================
-- (the batch views are dropped with the checks before this runs)
ALTER TABLE bioloupe_views.mart_check
    DROP COLUMN batch_relation,
    DROP COLUMN batch_column,
    DROP COLUMN implied_by,
    DROP COLUMN implied_columns;
