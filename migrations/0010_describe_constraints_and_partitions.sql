-- 0010: foreign keys, check constraints and partitions in a table's description.
--
-- Users asked the Go pgstream to track these; a table's description gains (after its 0.1.0 members, which keep their
-- form, so readers that ignore unknown members read it as before):
--   "foreign_keys":      [{"name", "columns", "referenced_table" (schema-qualified), "referenced_columns",
--                          "definition" (pg_get_constraintdef)}], by name
--   "check_constraints": [{"name", "definition"}], by name
--   "partition_of":      the partitioned table (schema-qualified) of a partition, null otherwise
--   "partition_bound":   the partition's bound (FOR VALUES ...), null for a table that is not a partition
--   "partition_key":     a partitioned table's key (LIST (kind)), null otherwise
-- Column comments were already described ("metadata"). A foreign key's description names the referenced table and
-- columns, so log_schema_changes (0009) describes again the tables whose foreign keys reference a changed table, and
-- the partitions an ALTER TABLE on their parent detached. Sequences and materialized views are not described yet.

CREATE OR REPLACE FUNCTION pgstream.describe_table(rel oid)
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


REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (10, 'describe_constraints_and_partitions') ON CONFLICT (version) DO NOTHING;
