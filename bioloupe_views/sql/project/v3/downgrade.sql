-- Project schema v3 -> v2: undo upgrade.sql's parts in reverse order. Run history is kept.

-- == changed-only: source change log ======================================================
-- (filled in by the changed-only change)

-- == checks: batched column checks, checks implied by an index ===========================
-- (filled in by the checks change)
