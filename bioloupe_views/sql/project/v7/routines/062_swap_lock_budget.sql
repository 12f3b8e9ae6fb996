-- Within a swap that already holds an exclusive lock (since p_since), set lock_timeout for
-- the next lock to what is left of p_budget, but never under 5ms: readers queued behind the
-- held lock wait for every later wait too, so together they stay near the budget, while
-- statements that need no wait (the usual case) go on however slow the machine is. A lock
-- that does not come in time fails the attempt, and the swap retries from nothing held.
CREATE FUNCTION bioloupe_views.swap_lock_budget(p_since timestamptz, p_budget text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.set_config('lock_timeout', GREATEST(5, pg_catalog.ceil(
               extract(epoch FROM p_budget::interval - (pg_catalog.clock_timestamp() - p_since)) * 1000))::bigint::text
           || 'ms', true)
$$;
