-- Project schema v5 -> v4: the guards go (the batch views are dropped with the checks
-- before this runs, and v4's checks are installed after it); run history is untouched.
ALTER TABLE bioloupe_views.mart_check
    DROP COLUMN implied_guard_relation,
    DROP COLUMN implied_guard_column;
