-- 0015: describe_table in C, and the owner lookup on an index (issue 15; extension 0.6.0).
--
-- Profiled at 1,000 tables (bench/ddl's CREATE TABLE + ALTER TABLE pairs, default delta mode), logging added
-- ~2.6 ms to each DDL, of which
--   * ~0.56 ms was describe_table() (0010): nine correlated subqueries over the catalogs per described table.
--     pgstream.describe_table is now C (extension/schema_describe.cpp), reading the same catalogs through their
--     indexes: 0.04 ms for a 3-column table, 0.18 ms for one with identity, generated and domain columns, foreign
--     keys, partial and expression indexes. Its result equals the SQL version's, kept as
--     pgstream.describe_table_sql: the regress check_log() compares the two for every table of the DDL corpus.
--     Where the pgstream library cannot be loaded or C functions cannot be created (`pgstream init` by a
--     non-superuser, or on a server without our library), describe_table stays the SQL version;
--   * ~0.12 ms at 1,000 tables and ~0.52 ms at 5,000 was a sequential scan of schema_tables: the lookup of the
--     sequences a changed table owns (`owner = ANY(changed_tables)`, 0013) runs on a generic plan, where the
--     planner cannot prove that the parameter implies the partial index's `owner IS NOT NULL`. A plain index on
--     owner serves it at any size.

DROP INDEX IF EXISTS pgstream.schema_tables_owner;
CREATE INDEX IF NOT EXISTS schema_tables_by_owner ON pgstream.schema_tables (owner);

CREATE OR REPLACE FUNCTION pgstream.describe_table_sql(rel oid)
RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN (WITH tbl AS (
        SELECT c.oid, c.relname, ids.id AS pgstream_id,
               CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
               CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
               (SELECT i.inhparent::regclass::text FROM pg_inherits i
                WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_of
        FROM pg_class c LEFT JOIN pgstream.table_ids ids ON ids.oid = c.oid
        WHERE c.oid = rel
    ),
    single_column_unique AS (
        SELECT DISTINCT i.indkey[0] AS attnum
        FROM pg_index i
        WHERE i.indrelid = rel AND i.indisunique AND i.indnkeyatts = 1 AND i.indkey[0] <> 0 AND i.indpred IS NULL
    ),
    cols AS (
        SELECT a.attnum,
               a.attname,
               format_type(a.atttypid, a.atttypmod) AS type,
               pg_get_expr(d.adbin, d.adrelid) AS default_expr,
               NOT (a.attnotnull OR (t.typtype = 'd' AND t.typnotnull)) AS nullable,
               a.attgenerated,
               a.attidentity,
               a.attnum IN (SELECT attnum FROM single_column_unique) AS is_unique,
               ds.description
        FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_description ds
               ON ds.classoid = 'pg_class'::regclass AND ds.objoid = a.attrelid AND ds.objsubid = a.attnum
        WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
    ),
    idx AS (
        SELECT ic.relname AS name,
               i.indisunique,
               i.indisprimary,
               pg_get_indexdef(i.indexrelid) AS definition,
               (SELECT coalesce(jsonb_agg(a.attname ORDER BY k.pos), '[]'::jsonb)
                FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS columns,
               (SELECT jsonb_agg(a.attname ORDER BY k.pos)
                FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indisprimary) AS primary_key_columns
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = rel
    ),
    fks AS (
        SELECT con.conname AS name,
               (SELECT jsonb_agg(a.attname ORDER BY k.pos)
                FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, pos)
                JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum) AS columns,
               con.confrelid::regclass::text AS referenced_table,
               (SELECT jsonb_agg(a.attname ORDER BY k.pos)
                FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, pos)
                JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum) AS referenced_columns,
               pg_get_constraintdef(con.oid) AS definition
        FROM pg_constraint con
        WHERE con.conrelid = rel AND con.contype = 'f'
    ),
    checks AS (
        SELECT con.conname AS name, pg_get_constraintdef(con.oid) AS definition
        FROM pg_constraint con
        WHERE con.conrelid = rel AND con.contype = 'c'
    )
    SELECT jsonb_build_object(
        'oid', tbl.oid::text,
        'name', tbl.relname,
        'pgstream_id', tbl.pgstream_id,
        'columns', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'pgstream_id', tbl.pgstream_id || '-' || cols.attnum,
                        'name', cols.attname,
                        'type', cols.type,
                        'default', cols.default_expr,
                        'nullable', cols.nullable,
                        'unique', cols.is_unique,
                        'generated', cols.attgenerated <> '',
                        'generated_kind', cols.attgenerated,
                        'identity', cols.attidentity,
                        'metadata', cols.description) ORDER BY cols.attnum), '[]'::jsonb)
                    FROM cols),
        'primary_key_columns', coalesce((SELECT primary_key_columns FROM idx WHERE indisprimary), '[]'::jsonb),
        'unique_not_null_columns', (SELECT coalesce(jsonb_agg(cols.attname ORDER BY cols.attnum), '[]'::jsonb)
                                    FROM cols WHERE cols.is_unique AND NOT cols.nullable),
        'indexes', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'name', idx.name,
                        'columns', idx.columns,
                        'unique', idx.indisunique,
                        'primary', idx.indisprimary,
                        'definition', idx.definition) ORDER BY idx.name), '[]'::jsonb)
                    FROM idx),
        'foreign_keys', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                             'name', fks.name,
                             'columns', fks.columns,
                             'referenced_table', fks.referenced_table,
                             'referenced_columns', fks.referenced_columns,
                             'definition', fks.definition) ORDER BY fks.name), '[]'::jsonb)
                         FROM fks),
        'check_constraints', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                  'name', checks.name,
                                  'definition', checks.definition) ORDER BY checks.name), '[]'::jsonb)
                              FROM checks),
        'partition_of', tbl.partition_of,
        'partition_bound', tbl.partition_bound,
        'partition_key', tbl.partition_key)
    FROM tbl);
END
$$;

-- describe_table becomes the C function; where that fails, it stays the SQL version of 0010.
DO $$
BEGIN
    CREATE OR REPLACE FUNCTION pgstream.describe_table(rel oid)
    RETURNS jsonb
    LANGUAGE c STABLE STRICT
    -- As the SQL version: format_type(), regclass output and pg_get_*def() qualify names by the search path.
    SET search_path = pg_catalog, pg_temp
    AS '$libdir/pgstream', 'pgstream_describe_table';
EXCEPTION WHEN undefined_file OR undefined_function OR insufficient_privilege THEN
    -- Keeps the SQL version (0010).
    NULL;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (15, 'describe_table_in_c')
ON CONFLICT (version) DO NOTHING;
