-- 0003: describing tables and schemas as JSON.
--
-- A schema version is {"tables": [<table>, ...]} with tables sorted by name, each table described on its own by
-- pgstream.describe_table(). Describing tables one at a time is what lets the event trigger re-describe only the
-- tables a DDL statement touched and reuse the rest from the previous version (see 0004).
-- All functions pin search_path to pg_catalog first: a user's function or operator with a catalog name in another
-- schema can never be picked instead of the catalog's.

CREATE OR REPLACE FUNCTION pgstream.is_system_schema(schema_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT schema_name IN ('pgstream', 'pg_catalog', 'information_schema', 'pg_toast', 'pg_temp')
        OR schema_name LIKE 'pg\_temp\_%'
        OR schema_name LIKE 'pg\_toast\_temp\_%'
$$;

-- Tables whose changes reach the stream: ordinary and partitioned tables (partitions included), not temporary, not in
-- a system schema. Views, materialized views, foreign tables and sequences carry no row changes of their own.
CREATE OR REPLACE FUNCTION pgstream.is_logged_table(rel oid)
RETURNS boolean
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((
        SELECT c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND NOT pgstream.is_system_schema(n.nspname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = rel), false);
END
$$;

-- The stable id of a table, minted the first time the table is seen; also records the schema it is logged in.
CREATE OR REPLACE FUNCTION pgstream.table_id(rel oid)
RETURNS pgstream.xid
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_id    pgstream.xid;
    logged_in   text;
    current_nsp text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = rel);
BEGIN
    SELECT t.id, t.schema_name INTO found_id, logged_in FROM pgstream.table_ids t WHERE t.oid = rel;
    IF found_id IS NULL THEN
        INSERT INTO pgstream.table_ids (oid, schema_name) VALUES (rel, current_nsp) RETURNING id INTO found_id;
    ELSIF logged_in IS DISTINCT FROM current_nsp THEN
        UPDATE pgstream.table_ids SET schema_name = current_nsp WHERE oid = rel;
    END IF;
    RETURN found_id;
END
$$;

-- One table as JSON (null if the table does not exist). The id must already be minted (pgstream.table_id).
-- Field names follow the Go pgstream's schema_log so its consumers keep working; "metadata" is the column comment.
-- "unique" means the column alone is the key of a unique, non-partial index (a unique or primary key constraint
-- has one); unique_not_null_columns are the columns that can identify a row when there is no primary key.
-- PL/pgSQL rather than SQL, and a generic plan, so that the query is planned once per session rather than per call.
CREATE OR REPLACE FUNCTION pgstream.describe_table(rel oid)
RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN (WITH tbl AS (
        SELECT c.oid, c.relname, ids.id AS pgstream_id
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
                    FROM idx))
    FROM tbl);
END
$$;

-- The whole schema described from the catalogs; mints ids for tables seen for the first time.
CREATE OR REPLACE FUNCTION pgstream.get_schema(schema_name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    described jsonb;
BEGIN
    IF pgstream.is_system_schema(schema_name) THEN
        RETURN jsonb_build_object('tables', '[]'::jsonb);
    END IF;

    PERFORM pgstream.table_id(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = get_schema.schema_name AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
      AND NOT EXISTS (SELECT FROM pgstream.table_ids t WHERE t.oid = c.oid AND t.schema_name = n.nspname);

    SELECT coalesce(jsonb_agg(pgstream.describe_table(c.oid) ORDER BY c.relname), '[]'::jsonb) INTO described
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = get_schema.schema_name AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't';

    RETURN jsonb_build_object('tables', described);
END
$$;

INSERT INTO pgstream.migrations (version, name) VALUES (3, 'describe_schema') ON CONFLICT (version) DO NOTHING;
