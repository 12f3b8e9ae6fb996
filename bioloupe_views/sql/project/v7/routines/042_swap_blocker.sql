-- Why a mart cannot be published by a swap, or NULL when it can. A swap moves the live mart
-- out and its build aside in; what depends on the live one must follow within the same
-- transaction, with no more rights than its owner has:
--   * the project's check views, and plain views of any role the project's role may act
--     as (a member of the owner, or a superuser), are re-pointed in place (CREATE OR
--     REPLACE VIEW keeps their oid, owner, grants, comments and options);
--   * the marts reading it are swapped with it (its group);
--   * anything else cannot follow: a materialized view, a function or any other object of
--     another kind, a temporary view of some session, a view whose owner the project's role
--     may not act as, or a mart owned by such a role. The mart falls back to concurrent and
--     the reason names the object.
-- SECURITY DEFINER, because "may act as" is the project's role's, who runs the swap.
CREATE FUNCTION bioloupe_views.swap_blocker(p_mart text)
RETURNS text
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_relid oid;
    v_owner name;
    v_found text;
BEGIN
    SELECT mm.relid, pg_catalog.pg_get_userbyid(c.relowner) INTO v_relid, v_owner
    FROM bioloupe_views.managed_mart mm JOIN pg_catalog.pg_class c ON c.oid = mm.relid
    WHERE mm.name = p_mart;
    IF v_relid IS NULL THEN
        RETURN 'it is not installed';
    END IF;
    IF NOT pg_catalog.pg_has_role(CURRENT_USER, v_owner, 'USAGE') THEN
        RETURN pg_catalog.format('it is owned by %s, which the project''s role %s may not act as',
                                 v_owner, CURRENT_USER);
    END IF;
    SELECT pg_catalog.format('%s (owner %s) reads it%s',
               CASE WHEN v.relkind = 'v' THEN 'view ' ELSE 'materialized view ' END
                   || v.oid::pg_catalog.regclass::pg_catalog.text,
               pg_catalog.pg_get_userbyid(v.relowner),
               CASE WHEN v.relkind <> 'v' THEN ' and cannot be re-pointed in place'
                    WHEN vn.nspname LIKE 'pg_temp%' THEN ' in another session''s temporary schema'
                    ELSE ' and the project''s role may not act as its owner' END)
    INTO v_found
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                                AND r.oid = d.objid
    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
    JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
    WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = v_relid
      AND v.oid <> v_relid
      AND NOT EXISTS (SELECT 1 FROM bioloupe_views.managed_mart mm WHERE mm.relid = v.oid)
      AND vn.nspname NOT IN (SELECT st.schema_name FROM bioloupe_views.stage st)
      AND NOT (v.relkind = 'v' AND vn.nspname NOT LIKE 'pg_temp%'
               AND pg_catalog.pg_has_role(CURRENT_USER, v.relowner, 'USAGE'))
    ORDER BY 1 LIMIT 1;
    IF v_found IS NOT NULL THEN
        RETURN v_found;
    END IF;
    SELECT pg_catalog.format('%s depends on it', pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid))
    INTO v_found
    FROM pg_catalog.pg_depend d
    WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = v_relid
      AND d.classid NOT IN ('pg_catalog.pg_rewrite'::pg_catalog.regclass,
                            'pg_catalog.pg_type'::pg_catalog.regclass,
                            'pg_catalog.pg_class'::pg_catalog.regclass)
    ORDER BY 1 LIMIT 1;
    RETURN v_found;
END;
$$;
