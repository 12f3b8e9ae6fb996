CREATE FUNCTION bioloupe_views.release_refresh_lock() RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.pg_advisory_unlock(1651470447, 1) $$;
