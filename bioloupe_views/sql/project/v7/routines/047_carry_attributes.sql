-- Give a mart's build aside what the live mart has that its definition does not say: owner,
-- grants (table and column), comments (its own and its columns'), storage options and
-- column statistics targets and options. Run when the build aside is made (statistics
-- targets before its ANALYZE) and again inside the swap for whatever changed meanwhile
-- (p_resync: only what differs, so the swap stays short). SECURITY DEFINER: only the
-- project's role, which owns the marts, may change them; the names come from the catalog.
CREATE FUNCTION bioloupe_views.carry_attributes(p_from oid, p_to oid, p_resync boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from record;
    v_to record;
    v_target text := p_to::pg_catalog.regclass::pg_catalog.text;
    g record;
BEGIN
    IF p_resync AND NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_class a, pg_catalog.pg_class b
            WHERE a.oid = p_from AND b.oid = p_to
              AND (a.relowner, a.relacl::text, a.reloptions::text, pg_catalog.obj_description(a.oid, 'pg_class'))
                  IS DISTINCT FROM
                  (b.relowner, b.relacl::text, b.reloptions::text, pg_catalog.obj_description(b.oid, 'pg_class')))
       AND NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_attribute a
            JOIN pg_catalog.pg_attribute b ON b.attrelid = p_to AND b.attname = a.attname
            WHERE a.attrelid = p_from AND a.attnum > 0 AND NOT a.attisdropped
              AND (a.attacl::text, a.attstattarget, a.attoptions::text, pg_catalog.col_description(p_from, a.attnum))
                  IS DISTINCT FROM
                  (b.attacl::text, b.attstattarget, b.attoptions::text, pg_catalog.col_description(p_to, b.attnum))) THEN
        RETURN;  -- nothing changed since the build aside: the swap stays short
    END IF;
    SELECT c.relowner, c.relacl, c.reloptions, pg_catalog.obj_description(c.oid, 'pg_class') AS note
    INTO v_from FROM pg_catalog.pg_class c WHERE c.oid = p_from;
    SELECT c.relowner, c.relacl, c.reloptions, pg_catalog.obj_description(c.oid, 'pg_class') AS note
    INTO v_to FROM pg_catalog.pg_class c WHERE c.oid = p_to;
    IF v_to.reloptions IS DISTINCT FROM v_from.reloptions THEN
        IF v_to.reloptions IS NOT NULL THEN
            EXECUTE pg_catalog.format('ALTER MATERIALIZED VIEW %s RESET (%s)', v_target,
                (SELECT pg_catalog.string_agg(pg_catalog.split_part(o, '=', 1), ', ')
                 FROM pg_catalog.unnest(v_to.reloptions) o));
        END IF;
        IF v_from.reloptions IS NOT NULL THEN
            EXECUTE pg_catalog.format('ALTER MATERIALIZED VIEW %s SET (%s)', v_target,
                pg_catalog.array_to_string(v_from.reloptions, ', '));
        END IF;
    END IF;
    IF v_to.note IS DISTINCT FROM v_from.note THEN
        EXECUTE pg_catalog.format('COMMENT ON MATERIALIZED VIEW %s IS %L', v_target, v_from.note);
    END IF;
    FOR g IN SELECT a.attname, pg_catalog.col_description(p_from, a.attnum) AS note,
                    pg_catalog.col_description(p_to, a.attnum) AS now_note,
                    a.attstattarget AS target, b.attstattarget AS now_target,
                    a.attoptions, b.attoptions AS now_options
             FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_attribute b ON b.attrelid = p_to AND b.attname = a.attname
             WHERE a.attrelid = p_from AND a.attnum > 0 AND NOT a.attisdropped LOOP
        IF g.note IS DISTINCT FROM g.now_note THEN
            EXECUTE pg_catalog.format('COMMENT ON COLUMN %s.%I IS %L', v_target, g.attname, g.note);
        END IF;
        IF coalesce(g.target, -1) IS DISTINCT FROM coalesce(g.now_target, -1) THEN
            EXECUTE pg_catalog.format('ALTER MATERIALIZED VIEW %s ALTER COLUMN %I SET STATISTICS %s',
                                      v_target, g.attname, coalesce(g.target, -1));
        END IF;
        IF g.attoptions IS DISTINCT FROM g.now_options AND g.attoptions IS NOT NULL THEN
            EXECUTE pg_catalog.format('ALTER MATERIALIZED VIEW %s ALTER COLUMN %I SET (%s)',
                                      v_target, g.attname, pg_catalog.array_to_string(g.attoptions, ', '));
        END IF;
    END LOOP;
    IF v_to.relowner <> v_from.relowner THEN
        EXECUTE pg_catalog.format('ALTER MATERIALIZED VIEW %s OWNER TO %I', v_target,
                                  pg_catalog.pg_get_userbyid(v_from.relowner));
    END IF;
    IF p_resync AND v_to.relacl IS NOT DISTINCT FROM v_from.relacl
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                       JOIN pg_catalog.pg_attribute b ON b.attrelid = p_to AND b.attname = a.attname
                       WHERE a.attrelid = p_from AND a.attnum > 0
                         AND a.attacl IS DISTINCT FROM b.attacl) THEN
        RETURN;
    END IF;
    -- Grants: what the build aside has goes, what the live mart has comes. The owner's own
    -- rights are implicit in both.
    FOR g IN SELECT DISTINCT x.grantee FROM pg_catalog.pg_class c,
             LATERAL pg_catalog.aclexplode(c.relacl) x WHERE c.oid = p_to AND x.grantee <> c.relowner
             UNION
             SELECT DISTINCT x.grantee FROM pg_catalog.pg_attribute a,
             LATERAL pg_catalog.aclexplode(a.attacl) x WHERE a.attrelid = p_to AND a.attnum > 0 LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', v_target,
            CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);
    END LOOP;
    FOR g IN SELECT x.grantee, x.privilege_type, x.is_grantable, NULL::name AS attname
             FROM pg_catalog.pg_class c, LATERAL pg_catalog.aclexplode(c.relacl) x
             WHERE c.oid = p_from AND x.grantee <> c.relowner
             UNION ALL
             SELECT x.grantee, x.privilege_type, x.is_grantable, a.attname
             FROM pg_catalog.pg_attribute a, LATERAL pg_catalog.aclexplode(a.attacl) x
             WHERE a.attrelid = p_from AND a.attnum > 0 AND NOT a.attisdropped LOOP
        EXECUTE pg_catalog.format('GRANT %s%s ON %s TO %s%s', g.privilege_type,
            CASE WHEN g.attname IS NULL THEN '' ELSE pg_catalog.format(' (%I)', g.attname) END,
            v_target,
            CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END,
            CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END;
$$;
