-- Project schema v6: change tracking that a writer cannot switch off, and that has a start.
-- Run history is untouched both ways.

-- The trigger's per-transaction memo held 'y', so any value a session brought along (SET,
-- ALTER ROLE/DATABASE ... SET, a pooled session's leftover) silenced the log for the
-- writer's own changes. It now holds the id of the transaction that wrote the change row:
-- a memo from anywhere else does not match the writing transaction and counts as absent.
-- Replaced in place (the tracked tables' triggers depend on it, so it keeps its oid).
CREATE OR REPLACE FUNCTION bioloupe_views.log_source_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF coalesce(pg_catalog.current_setting(TG_ARGV[0], true), '')
       OPERATOR(pg_catalog.<>) pg_catalog.pg_current_xact_id()::pg_catalog.text THEN
        PERFORM bioloupe_views.record_source_change(TG_RELID);
        PERFORM pg_catalog.set_config(TG_ARGV[0], pg_catalog.pg_current_xact_id()::pg_catalog.text, true);
    END IF;
    RETURN NULL;
END;
$$;

-- Since when each source has been tracked, as the engine last saw its trigger: its oid, and
-- the xmin of its catalog row, which any ALTER of the trigger or DISABLE/ENABLE changes. When
-- either differs from what is recorded, writes may have gone unlogged in between: note_source_tracking() starts tracking anew and
-- appends a change row, so every mart reading the table counts as changed until it has been
-- refreshed after that moment.
CREATE TABLE bioloupe_views.source_tracking (
    relid        oid PRIMARY KEY,
    trigger_oid  oid NOT NULL,
    trigger_xmin text NOT NULL,
    since        timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    xid          xid8 NOT NULL
);
COMMENT ON TABLE bioloupe_views.source_tracking IS
    'since when each tracked source''s writes are logged (see note_source_tracking())';
