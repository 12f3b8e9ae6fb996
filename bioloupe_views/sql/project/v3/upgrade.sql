-- Project schema v3: faster audits and refreshing only what changed.
-- Each part below is independent; downgrade.sql undoes them in reverse order.

-- == checks: batched column checks, checks implied by an index ===========================
-- Column checks (not_null, accepted_values) of a mart are also computed together by one
-- view per mart that scans it once (count(*) FILTER ...); each such check's column there is
-- batch_column. A unique check that a unique index of the mart provably implies records the
-- index and its columns, and passes while that index is still there, unique and valid.
ALTER TABLE bioloupe_views.mart_check
    ADD COLUMN batch_relation name,
    ADD COLUMN batch_column name,
    ADD COLUMN implied_by name,
    ADD COLUMN implied_columns name[];
COMMENT ON COLUMN bioloupe_views.mart_check.batch_relation IS 'the view in bioloupe_views_checks that counts this check''s failures with the mart''s other column checks, in one scan';
COMMENT ON COLUMN bioloupe_views.mart_check.implied_by IS 'a unique index of the mart that guarantees this check passes';

-- == changed-only: source change log ======================================================
-- A statement-level trigger on each tracked source table (bioloupe-views track-sources; the
-- sources belong to their owners) appends (table, writing transaction, time) here in the
-- writer's own transaction, at most once per table per transaction: a change is logged
-- exactly when it commits, and an aborted writer's row vanishes with it.
CREATE TABLE bioloupe_views.source_change (
    relid      oid NOT NULL,
    xid        xid8 NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX source_change_relid_xid_idx ON bioloupe_views.source_change (relid, xid);
COMMENT ON TABLE bioloupe_views.source_change IS
    'tracked source writes: one row per table per writing transaction, pruned by the refresh';

-- What a refresh saw: the snapshot taken before its REFRESH statement (the statement's own is
-- later, so it sees at least as much), the refresh's transaction and the mart's version. A
-- later --changed-only run compares the change log with `snapshot`. `reason` says why a mart
-- was refreshed or left as it was; an 'unchanged' mart keeps the time of its last refresh.
ALTER TABLE bioloupe_views.run_log
    ADD COLUMN snapshot pg_snapshot,
    ADD COLUMN xid xid8,
    ADD COLUMN version integer,
    ADD COLUMN reason text,
    ADD COLUMN unchanged_since timestamptz,
    DROP CONSTRAINT run_log_status_check,
    ADD CONSTRAINT run_log_status_check CHECK (status IN
        ('pending', 'running', 'success', 'error', 'check_failed', 'skipped', 'cancelled',
         'unchanged'));
-- The last successful refresh of each mart, found without scanning history.
CREATE INDEX run_log_mart_success_idx ON bioloupe_views.run_log (mart, id DESC)
    WHERE status = 'success';

-- The trigger functions. Not routine files (those are dropped and recreated by every
-- version change): the source tables' triggers depend on them, so they live with the table
-- they write, and downgrade.sql drops them after the triggers.
--
-- record_source_change() writes the row: SECURITY DEFINER, so the writers of a source need
-- no right on the log; it can only append the given table and the caller's own transaction.
CREATE FUNCTION bioloupe_views.record_source_change(p_relid oid)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO bioloupe_views.source_change (relid, xid)
    VALUES (p_relid, pg_catalog.pg_current_xact_id())
$$;
-- log_source_change() is the trigger, on every statement that writes a tracked source, so it
-- is kept to the bare minimum: the first statement of a transaction on a table records it and
-- sets a transaction-local memo (the trigger's argument names the setting); every later one
-- only reads the memo. A rolled-back subtransaction undoes the memo with the row. The one
-- function without a pinned search_path: SET on a function costs a configuration save and
-- restore per call, several times the rest of it; it runs with the writer's own rights (it
-- is not SECURITY DEFINER), and every name and operator in it is schema-qualified.
CREATE FUNCTION bioloupe_views.log_source_change()
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
-- The trigger runs with the rights of whoever writes a source, and calls
-- record_source_change() by name: every role may look up names in this schema. That gives
-- nothing else: no table here is readable by PUBLIC, and of its routines PUBLIC may execute
-- only these two (privileges.sql).
GRANT USAGE ON SCHEMA bioloupe_views TO PUBLIC;
COMMENT ON FUNCTION bioloupe_views.log_source_change() IS
    'bioloupe-views: statement trigger on tracked sources; see bioloupe-views track-sources';
