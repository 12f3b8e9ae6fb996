-- Project schema v4: checks that read an earlier mart of the run wait for its refresh to
-- finish (refresh_mart()), and the snapshot they start from is kept for --changed-only
-- (mart_change()). Run history is kept both ways; older rows have no check snapshot and
-- are judged by their refresh's snapshot, as in v3.
ALTER TABLE bioloupe_views.run_log ADD COLUMN check_snapshot pg_snapshot;
COMMENT ON COLUMN bioloupe_views.run_log.check_snapshot IS
    'the snapshot the mart''s checks started from (they may wait for an earlier mart of the run)';
