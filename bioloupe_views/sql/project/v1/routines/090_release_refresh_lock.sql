CREATE FUNCTION bioloupe_views.release_refresh_lock() RETURNS boolean
LANGUAGE sql AS $$ SELECT pg_advisory_unlock(1651470447, 1) $$;
