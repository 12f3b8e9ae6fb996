-- Only the owner runs the engine's routines, and the roles it grants them to (see
-- v2/privileges.sql). One exception: the source change trigger. The owners of the sources
-- attach log_source_change() to their tables (bioloupe-views track-sources), CREATE TRIGGER
-- needs EXECUTE on it, and it runs with the rights of whoever writes the source, so they
-- need EXECUTE on record_source_change(). Neither can do more than append a table's oid and
-- the caller's own transaction to the change log (at worst, an extra refresh); the log is
-- pruned by every run.
REVOKE ALL ON ALL ROUTINES IN SCHEMA bioloupe_views FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bioloupe_views.log_source_change(),
                          bioloupe_views.record_source_change(oid) TO PUBLIC;
