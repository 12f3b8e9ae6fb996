-- What the given project objects (views and materialized views by pg_class oid, functions
-- by pg_proc oid) are bound to, beyond what they may be bound to: PostgreSQL's own objects
-- (pg_catalog, or created by initdb), the source tables of the contract in the source schema
-- and the types of their columns, the marts, and the project's own schemas. Anything else
-- was resolved from a schema some role could create in, and would run with the rights of
-- whoever refreshes or reads the object. One row per such dependency.
-- Parameters: oids (pg_class), functions (pg_proc), source_schema, contract (table names),
-- mart_schema, marts (names), project_schemas.
WITH object AS (
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, c.oid AS objid, c.oid AS relid
    FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) ANY (%(oids)s::pg_catalog.oid[])
    UNION ALL
    SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, r.oid, r.ev_class
    FROM pg_catalog.pg_rewrite r WHERE r.ev_class OPERATOR(pg_catalog.=) ANY (%(oids)s::pg_catalog.oid[])
    UNION ALL
    SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, NULL
    FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) ANY (%(functions)s::pg_catalog.oid[])
),
source_table AS (
    SELECT c.oid
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE n.nspname OPERATOR(pg_catalog.=) %(source_schema)s
      AND c.relname OPERATOR(pg_catalog.=) ANY (%(contract)s::pg_catalog.name[])
),
allowed_relation AS (
    SELECT oid FROM source_table
    UNION ALL
    SELECT c.oid
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE (n.nspname OPERATOR(pg_catalog.=) %(mart_schema)s
           AND c.relname OPERATOR(pg_catalog.=) ANY (%(marts)s::pg_catalog.name[])
           AND c.relkind OPERATOR(pg_catalog.=) 'm')
       OR n.nspname OPERATOR(pg_catalog.=) ANY (%(project_schemas)s::pg_catalog.name[])
),
source_type AS (
    SELECT a.atttypid AS oid
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid IN (SELECT oid FROM source_table) AND a.attnum OPERATOR(pg_catalog.>) 0
),
dependency AS (
    SELECT DISTINCT o.classid AS object_class, o.objid AS object_id, o.relid,
           d.refclassid, d.refobjid, d.refobjsubid
    FROM object o
    JOIN pg_catalog.pg_depend d
      ON d.classid OPERATOR(pg_catalog.=) o.classid AND d.objid OPERATOR(pg_catalog.=) o.objid
    WHERE d.deptype OPERATOR(pg_catalog.=) 'n'
      AND NOT (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
               AND d.refobjid OPERATOR(pg_catalog.=) o.relid)
)
SELECT coalesce(pg_catalog.format('%%s %%s', CASE c.relkind WHEN 'm' THEN 'materialized view'
                                                           ELSE 'view' END,
                                  c.oid::pg_catalog.regclass),
                pg_catalog.format('function %%s', d.object_id::pg_catalog.regprocedure)) AS dependent,
       pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0) AS object,
       i.schema,
       pg_catalog.pg_get_userbyid(CASE d.refclassid
           WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
               (SELECT p.proowner FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) d.refobjid)
           WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN
               (SELECT p.oprowner FROM pg_catalog.pg_operator p WHERE p.oid OPERATOR(pg_catalog.=) d.refobjid)
           WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN
               (SELECT t.typowner FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) d.refobjid)
           WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN
               (SELECT r.relowner FROM pg_catalog.pg_class r WHERE r.oid OPERATOR(pg_catalog.=) d.refobjid)
           WHEN 'pg_catalog.pg_collation'::pg_catalog.regclass THEN
               (SELECT x.collowner FROM pg_catalog.pg_collation x WHERE x.oid OPERATOR(pg_catalog.=) d.refobjid)
           WHEN 'pg_catalog.pg_ts_config'::pg_catalog.regclass THEN
               (SELECT x.cfgowner FROM pg_catalog.pg_ts_config x WHERE x.oid OPERATOR(pg_catalog.=) d.refobjid)
           WHEN 'pg_catalog.pg_ts_dict'::pg_catalog.regclass THEN
               (SELECT x.dictowner FROM pg_catalog.pg_ts_dict x WHERE x.oid OPERATOR(pg_catalog.=) d.refobjid)
       END) AS owner
FROM dependency d
LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.relid
CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.refclassid, d.refobjid, 0) i
WHERE NOT (
       d.refobjid OPERATOR(pg_catalog.<) 16384          -- created by initdb: PostgreSQL's own
    OR d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
    OR i.schema OPERATOR(pg_catalog.=) 'pg_catalog'
    OR i.schema OPERATOR(pg_catalog.=) ANY (%(project_schemas)s::pg_catalog.text[])
    OR (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
        AND d.refobjid IN (SELECT oid FROM allowed_relation))
    OR (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
        AND EXISTS (SELECT 1 FROM pg_catalog.pg_type t
                    WHERE t.oid OPERATOR(pg_catalog.=) d.refobjid
                      AND (t.oid IN (SELECT oid FROM source_type)
                           OR t.typelem IN (SELECT oid FROM source_type)
                           OR t.typrelid IN (SELECT oid FROM allowed_relation)))))
ORDER BY 1, 2
