-- The one lock that serialises refreshes, from the CLI and from pg_cron alike: a session
-- advisory lock, so it spans the per-mart transactions and dies with the session.
CREATE FUNCTION bioloupe_views.try_refresh_lock() RETURNS boolean
LANGUAGE sql AS $$ SELECT pg_try_advisory_lock(1651470447, 1) $$;
