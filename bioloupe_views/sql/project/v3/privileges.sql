-- Only the owner runs the engine's routines, and the roles it grants them to (see
-- v2/privileges.sql). One exception: the source change trigger function. The owners of the
-- sources attach it to their tables (bioloupe-views track-sources), and CREATE TRIGGER needs
-- EXECUTE on it; it cannot be called other than as a trigger, and it only appends the
-- table's oid and the writing transaction to the change log.
REVOKE ALL ON ALL ROUTINES IN SCHEMA bioloupe_views FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bioloupe_views.log_source_change() TO PUBLIC;
