-- Project schema v6 -> v5: the tracking record goes, and the trigger's memo is 'y' again
-- (v3's body). Run history and the change log are untouched.
DROP TABLE bioloupe_views.source_tracking;
CREATE OR REPLACE FUNCTION bioloupe_views.log_source_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF coalesce(pg_catalog.current_setting(TG_ARGV[0], true), '') OPERATOR(pg_catalog.<>) 'y' THEN
        PERFORM bioloupe_views.record_source_change(TG_RELID);
        PERFORM pg_catalog.set_config(TG_ARGV[0], 'y', true);
    END IF;
    RETURN NULL;
END;
$$;
