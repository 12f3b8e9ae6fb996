-- Project schema v4 -> v3: the check snapshots go; the rest of the run history stays.
ALTER TABLE bioloupe_views.run_log DROP COLUMN check_snapshot;
