-- The one lock that serialises refreshes, from every client: a session advisory lock, so it
-- spans the per-mart transactions and dies with the session that holds the run.
CREATE FUNCTION bioloupe_views.try_refresh_lock() RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.pg_try_advisory_lock(1651470447, 1) $$;
