DROP TRIGGER IF EXISTS {trigger} ON {table};
CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT WHEN (pg_catalog.current_setting({setting}, true) IS DISTINCT FROM 'y')
    EXECUTE FUNCTION {project}.log_source_change({key});
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger};
