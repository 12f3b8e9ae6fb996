-- Project schema v3: faster audits and refreshing only what changed.
-- Each part below is independent; downgrade.sql undoes them in reverse order.

-- == checks: batched column checks, checks implied by an index ===========================
-- Column checks (not_null, accepted_values) of a mart are also computed together by one
-- view per mart that scans it once (count(*) FILTER ...); each such check's column there is
-- batch_column. A unique check that a unique index of the mart provably implies records the
-- index and its columns, and passes while that index is still there, unique and valid.
ALTER TABLE bioloupe_views.mart_check
    ADD COLUMN batch_relation name,
    ADD COLUMN batch_column name,
    ADD COLUMN implied_by name,
    ADD COLUMN implied_columns name[];
COMMENT ON COLUMN bioloupe_views.mart_check.batch_relation IS 'the view in bioloupe_views_checks that counts this check''s failures with the mart''s other column checks, in one scan';
COMMENT ON COLUMN bioloupe_views.mart_check.implied_by IS 'a unique index of the mart that guarantees this check passes';

-- == changed-only: source change log ======================================================
-- (filled in by the changed-only change)
