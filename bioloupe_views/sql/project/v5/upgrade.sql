-- Project schema v5: a unique check that a unique index implies only while its text columns
-- hold no first character of the separator after them keeps that condition, as a count in
-- the mart's one scan of its column checks. run_checks() runs the check for real when the
-- count is not 0. Run history is untouched both ways.
ALTER TABLE bioloupe_views.mart_check
    ADD COLUMN implied_guard_relation name,
    ADD COLUMN implied_guard_column name;
COMMENT ON COLUMN bioloupe_views.mart_check.implied_guard_relation IS
    'the view in bioloupe_views_checks whose implied_guard_column must count 0 for implied_by to hold';
