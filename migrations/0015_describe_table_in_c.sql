-- 0015: describe_table in C, and the owner lookup on an index (issue 15; extension 0.6.0).
--
-- Profiled at 1,000 tables (bench/ddl's CREATE TABLE + ALTER TABLE pairs, default delta mode), logging added
-- ~2.6 ms to each DDL, of which
--   * ~0.56 ms was describe_table() (0010): nine correlated subqueries over the catalogs per described table.
--     pgstream.describe_table is now C (extension/schema_describe.cpp), reading the same catalogs through their
--     indexes: 0.03 ms against 0.38 ms for a two-column table, 0.15 ms against 0.86 ms for one with identity,
--     generated and domain columns, foreign keys, partial and expression indexes. Its result equals the SQL version's, kept as
--     pgstream.describe_table_sql: the regress check_log() compares the two for every table of the DDL corpus.
--     Where the pgstream library cannot be loaded or C functions cannot be created (`pgstream init` by a
--     non-superuser, or on a server without our library), describe_table stays the SQL version;
--   * ~0.12 ms at 1,000 tables and ~0.52 ms at 5,000 was a sequential scan of schema_tables: the lookup of the
--     sequences a changed table owns (`owner = ANY(changed_tables)`, 0013) runs on a generic plan, where the
--     planner cannot prove that the parameter implies the partial index's `owner IS NOT NULL`. A plain index on
--     owner serves it at any size;
--   * ~0.3 ms at 2,000 tables, growing with the number of constraints in the database, was the lookup of the
--     tables whose foreign keys reference a changed table (0010): see log_schema_changes below.

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

-- log_schema_changes of 0014, with the expansion to the tables whose foreign keys reference a changed table
-- through pg_depend's index on the referenced object only (see its comment): its generic plan ANDed in a bitmap
-- of pg_depend's index on the depender's class, every constraint's dependency (0.3 ms per DDL at 2,000 tables).
CREATE OR REPLACE FUNCTION pgstream.log_schema_changes(
    changed_tables  oid[],
    removed_tables  oid[]  DEFAULT '{}',
    touched_schemas text[] DEFAULT '{}',
    dropped_schemas text[] DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- A custom plan would inline the multi-megabyte version into the INSERT's plan as a constant, copying it twice.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    live_tables oid[];
    live_objects oid[];
    live_others oid[];
    new_objects jsonb[];
    changed_by_kind jsonb;
    schemas     text[];
    target      text;
    previous    record;
    described   jsonb;
    written     integer := 0;
    modified    boolean;
    new_tables  jsonb[];
    delta_mode  boolean := pgstream.delta_versions();
    base_known  boolean;
    changed     jsonb;
    removed     jsonb;
    new_id      pgstream.xid;
    sizes       record;
BEGIN
    changed_tables := coalesce(changed_tables, '{}');
    removed_tables := coalesce(removed_tables, '{}');

    -- ALTER TABLE on a parent recurses into partitions and inheritance children, but reports only the parent.
    IF cardinality(changed_tables) > 0 THEN
        WITH RECURSIVE tree(rel) AS (
            SELECT unnest(changed_tables)
            UNION
            SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.rel
        )
        SELECT coalesce(array_agg(rel), '{}') INTO changed_tables FROM tree WHERE NOT rel = ANY(removed_tables);

        -- Descriptions that name a changed table (0010): the foreign keys that reference it, and the partitions an
        -- ALTER TABLE on their partitioned table detached (described as its partitions in the latest version, no
        -- longer ones; a partition in another schema than its parent is not found).
        SELECT coalesce(array_agg(DISTINCT rel), '{}') INTO changed_tables
        FROM (
            SELECT unnest(changed_tables)
            UNION ALL
            -- Through pg_depend's index on the referenced object (pg_constraint has none on confrelid: a scan of
            -- it would cost every DDL a pass over the database's constraints). classid is compared through
            -- coalesce() so that the generic plan cannot AND in pg_depend's index on the depender's class, a pass
            -- over every constraint's dependency (0015).
            SELECT con.conrelid
            FROM pg_depend dep JOIN pg_constraint con ON con.oid = dep.objid
            WHERE dep.refclassid = 'pg_class'::regclass AND dep.refobjid = ANY(changed_tables)
              AND coalesce(dep.classid, 0::oid) = 'pg_constraint'::regclass AND con.contype = 'f'
              AND con.confrelid = dep.refobjid
              AND NOT con.conrelid = ANY(removed_tables)
            UNION ALL
            SELECT (t ->> 'oid')::oid
            FROM pg_class p JOIN pg_namespace n ON n.oid = p.relnamespace,
                 LATERAL pgstream.latest_tables(n.nspname) AS t
            WHERE p.oid = ANY(changed_tables) AND p.relkind = 'p'
              AND t ->> 'partition_of' IS NOT NULL
              AND NOT EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = (t ->> 'oid')::oid)
            UNION ALL
            -- Sequences a changed table owns (serial and identity columns, OWNED BY): their owner is described
            -- by name (0013). Through pg_depend's index on the referenced object.
            SELECT dep.objid
            FROM pg_depend dep
            WHERE dep.refclassid = 'pg_class'::regclass AND dep.refobjid = ANY(changed_tables)
              AND coalesce(dep.classid, 0::oid) = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
            UNION ALL
            -- and the ones it owned when last described (delta mode's cache): gone after DROP IDENTITY.
            SELECT st.oid FROM pgstream.schema_tables st WHERE st.owner = ANY(changed_tables)
        ) AS expanded(rel)
        WHERE rel IS NOT NULL;
    END IF;

    -- pgstream.is_logged_table() of each changed table, in one query.
    SELECT coalesce(array_agg(c.oid), '{}') INTO live_tables
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = ANY(changed_tables) AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
      AND NOT pgstream.is_system_schema(n.nspname);
    -- The same for the sequences and materialized views among them (0013).
    SELECT coalesce(array_agg(c.oid), '{}') INTO live_others
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = ANY(changed_tables) AND c.relkind IN ('S', 'm') AND c.relpersistence <> 't'
      AND NOT pgstream.is_system_schema(n.nspname);
    live_objects := live_tables || live_others;

    -- Every schema a table is in now or was last logged in (SET SCHEMA and schema renames leave one behind).
    SELECT coalesce(array_agg(DISTINCT name ORDER BY name), '{}') INTO schemas
    FROM (
        SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY(live_objects)
        UNION ALL
        -- One ANY, so that table_ids' index on oid serves it (an OR of two scanned every table's row).
        SELECT t.schema_name FROM pgstream.table_ids t
        WHERE t.oid = ANY(changed_tables || removed_tables)
        UNION ALL
        -- The same for sequences and materialized views (0014): ALTER SEQUENCE/MATERIALIZED VIEW ... SET SCHEMA.
        SELECT o.schema_name FROM pgstream.object_schemas o
        WHERE o.oid = ANY(changed_tables || removed_tables)
        UNION ALL
        SELECT unnest(touched_schemas)
        UNION ALL
        SELECT unnest(dropped_schemas)
    ) AS involved(name)
    WHERE name IS NOT NULL AND NOT pgstream.is_system_schema(name);

    PERFORM pgstream.table_id(rel) FROM unnest(live_tables) AS rel;
    IF cardinality(live_others) > 0 THEN
        -- Where each sequence and materialized view is logged now (the schema it left was found above).
        INSERT INTO pgstream.object_schemas (oid, schema_name)
        SELECT c.oid, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = ANY(live_others)
        ON CONFLICT (oid) DO UPDATE SET schema_name = excluded.schema_name
        WHERE object_schemas.schema_name IS DISTINCT FROM excluded.schema_name;
    END IF;

    FOREACH target IN ARRAY schemas LOOP
        -- Versions of one schema are numbered in commit order: concurrent DDL on the same schema waits here.
        PERFORM pg_advisory_xact_lock(1885827956, hashtext(target));

        IF target = ANY(dropped_schemas) OR NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = target) THEN
            previous := NULL;
            SELECT l.version, l.schema INTO previous
            FROM pgstream.schema_log_entries l WHERE l.schema_name = target ORDER BY l.version DESC LIMIT 1;
            described := '{"tables": null, "dropped": true}';
            CONTINUE WHEN previous.schema IS NOT DISTINCT FROM described;
            PERFORM pgstream.insert_version(target, coalesce(previous.version, 0) + 1, described);
            written := written + 1;
            -- The dropped marker supersedes the schema's history (as in the Go pgstream).
            DELETE FROM pgstream.schema_log_entries WHERE schema_name = target AND version <= coalesce(previous.version, 0);
            DELETE FROM pgstream.schema_tables WHERE schema_name = target;
            DELETE FROM pgstream.schema_tables_synced WHERE schema_name = target;
            CONTINUE;
        END IF;

        -- {"kind": the document's array, "description"} of each touched object of the schema.
        new_objects := ARRAY(SELECT pgstream.describe_relation(c.oid)
                             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                             WHERE c.oid = ANY(live_objects) AND n.nspname = target);
        new_tables := ARRAY(SELECT o -> 'description' FROM unnest(new_objects) AS o WHERE o ->> 'kind' = 'tables');

        IF NOT delta_mode THEN
            previous := NULL;
            SELECT l.version, l.schema INTO previous
            FROM pgstream.schema_log_entries l WHERE l.schema_name = target ORDER BY l.version DESC LIMIT 1;
            -- Untouched tables are copied from the previous version as they are, touched ones described again
            -- (see compose_tables, 0007). The previous version is read (decompressed) once, by compose_tables.
            -- Two statements: the call below is then a "simple expression" that PL/pgSQL evaluates without going
            -- through SPI, which would copy the multi-megabyte result into a tuple once more.
            IF previous.schema ? 'delta' THEN
                -- Back from delta mode: compose from the previous version's full document.
                previous.schema := pgstream.schema_at(target, previous.version);
            END IF;
            described := CASE WHEN previous.schema IS NULL THEN 'null'::jsonb
                              -- Written before 0013 (no "sequences"): rebuilt once, below.
                              WHEN NOT previous.schema ? 'sequences' THEN 'null'::jsonb
                              ELSE pgstream.compose_tables(previous.schema, changed_tables || removed_tables,
                                                           new_tables) END;
            modified := described IS NOT NULL;
            IF jsonb_typeof(described) IS DISTINCT FROM 'null' THEN
                -- The sequences and materialized views (few per schema) are merged in SQL.
                described := pgstream.compose_other_objects(coalesce(described, previous.schema),
                                                            changed_tables || removed_tables, new_objects);
                modified := described IS DISTINCT FROM previous.schema;
            END IF;
            IF jsonb_typeof(described) = 'null' THEN
                -- The first version, or the first after a "dropped" marker: built from the catalogs in full.
                described := pgstream.get_schema(target);
                modified := previous.schema IS DISTINCT FROM described;
            END IF;
            CONTINUE WHEN NOT modified;
            PERFORM pgstream.insert_version(target, coalesce(previous.version, 0) + 1, described);
            written := written + 1;
            CONTINUE;
        END IF;

        -- Delta mode: the previous version's number and id only; its document is not read.
        previous := NULL;
        SELECT l.version, l.id INTO previous
        FROM pgstream.schema_log_entries l WHERE l.schema_name = target ORDER BY l.version DESC LIMIT 1;
        base_known := previous.version IS NOT NULL
                      AND EXISTS (SELECT FROM pgstream.schema_tables_synced s
                                  WHERE s.schema_name = target AND s.version_id = previous.id);
        IF previous.version IS NOT NULL AND NOT base_known THEN
            -- Written in full mode or by refresh_schema: reload the current descriptions once.
            described := pgstream.schema_at(target, previous.version);
            -- A document written before 0013 has no "sequences": then built in full below, once.
            IF jsonb_typeof(described -> 'tables') = 'array' AND described ? 'sequences' AND NOT described ? 'dropped' THEN
                PERFORM pgstream.sync_schema_tables(target, previous.id, described);
                base_known := true;
            END IF;
        END IF;

        IF NOT base_known THEN
            -- The first version, or the first after a "dropped" marker: built from the catalogs in full.
            described := pgstream.get_schema(target);
            new_id := pgstream.insert_version(target, coalesce(previous.version, 0) + 1, described);
            PERFORM pgstream.sync_schema_tables(target, new_id, described);
            written := written + 1;
            CONTINUE;
        END IF;

        -- The touched tables described again whose description changed, and the touched tables that left.
        SELECT coalesce(jsonb_object_agg(kind, descriptions), '{}') INTO changed_by_kind
        FROM (SELECT o ->> 'kind' AS kind,
                     jsonb_agg(o -> 'description' ORDER BY (o -> 'description' ->> 'name') COLLATE "C") AS descriptions
              FROM unnest(new_objects) AS o
              WHERE o -> 'description' IS NOT NULL AND jsonb_typeof(o -> 'description') = 'object'
                AND NOT EXISTS (SELECT FROM pgstream.schema_tables st
                                WHERE st.schema_name = target AND st.oid = (o -> 'description' ->> 'oid')::oid
                                  AND st.description = o -> 'description')
              GROUP BY 1) AS by_kind;
        changed := coalesce(changed_by_kind -> 'tables', '[]');
        SELECT coalesce(jsonb_agg(st.oid::text ORDER BY st.oid), '[]') INTO removed
        FROM pgstream.schema_tables st
        WHERE st.schema_name = target AND st.oid = ANY(changed_tables || removed_tables)
          AND NOT EXISTS (SELECT FROM unnest(new_objects) AS o
                          WHERE (o -> 'description' ->> 'oid')::oid = st.oid);
        CONTINUE WHEN changed_by_kind = '{}' AND removed = '[]';

        -- The current descriptions after this version.
        -- By oid, so that the primary key serves it (oid::text scanned every description of the schema).
        DELETE FROM pgstream.schema_tables st
        WHERE st.schema_name = target
          AND st.oid = ANY(ARRAY(SELECT r::oid FROM jsonb_array_elements_text(removed) AS r));
        INSERT INTO pgstream.schema_tables (schema_name, oid, description, kind, owner)
        SELECT target, (d ->> 'oid')::oid, d, by_kind.key,
               CASE WHEN by_kind.key = 'sequences' THEN pgstream.sequence_owner((d ->> 'oid')::oid) END
        FROM jsonb_each(changed_by_kind) AS by_kind, jsonb_array_elements(by_kind.value) AS d
        ON CONFLICT (schema_name, oid) DO UPDATE
        SET description = excluded.description, kind = excluded.kind, owner = excluded.owner;

        described := jsonb_build_object('delta', jsonb_build_object('base_version', previous.version,
                                                                    'removed', removed),
                                        'changed', changed)
                     -- New members for the other kinds (0013), present only when some changed: readers of 0.4.0's
                     -- deltas (the shipper's translator) read "changed" and "removed" as before.
                     || coalesce((SELECT jsonb_object_agg('changed_' || by_kind.key, by_kind.value)
                                  FROM jsonb_each(changed_by_kind) AS by_kind WHERE by_kind.key <> 'tables'), '{}');
        SELECT s.full_bytes, s.delta_bytes INTO sizes FROM pgstream.schema_tables_synced s WHERE s.schema_name = target;
        IF sizes.delta_bytes + pg_column_size(described) > greatest(sizes.full_bytes, 65536) THEN
            -- The deltas since the last whole document would outgrow it (and 64 kB): this version is the whole
            -- document, built from the current descriptions (O(tables), once per that many bytes of deltas), so
            -- that composing any version reads at most about twice the document.
            described := pgstream.document_from_schema_tables(target);
            new_id := pgstream.insert_version(target, previous.version + 1, described);
            UPDATE pgstream.schema_tables_synced
            SET version_id = new_id, full_bytes = pg_column_size(described), delta_bytes = 0
            WHERE schema_name = target;
        ELSE
            new_id := pgstream.insert_version(target, previous.version + 1, described);
            UPDATE pgstream.schema_tables_synced
            SET version_id = new_id, delta_bytes = delta_bytes + pg_column_size(described)
            WHERE schema_name = target;
        END IF;
        written := written + 1;
    END LOOP;

    IF cardinality(removed_tables) > 0 THEN
        DELETE FROM pgstream.table_ids WHERE oid = ANY(removed_tables);
        DELETE FROM pgstream.object_schemas WHERE oid = ANY(removed_tables);
    END IF;
    RETURN written;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (15, 'describe_table_in_c')
ON CONFLICT (version) DO NOTHING;
