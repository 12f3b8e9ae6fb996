-- Project schema v3: faster audits and refreshing only what changed.
-- Each part below is independent; downgrade.sql undoes them in reverse order.

-- == checks: batched column checks, checks implied by an index ===========================
-- (filled in by the checks change)

-- == changed-only: source change log ======================================================
-- (filled in by the changed-only change)
