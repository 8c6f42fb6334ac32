-- 0014: schema tracking at scale, the rest of issue 15 (extension 0.5.0).
--
-- A smaller fixed cost per logged DDL. Profiled on a schema of 1,000 tables in the default (delta) mode with
-- bench/ddl's workload (track_functions = all, pg_stat_statements.track = all with track_planning): of the ~3 ms
-- that logging added to each CREATE/ALTER TABLE after 0013,
--   * ~0.9 ms was one whole document written every ~80 DDL, not every ~1,400: sync_schema_tables recorded the
--     reloaded document's size as stored (pg_column_size of a compressed datum, 104 kB at 1,000 tables), while the
--     deltas and the whole documents that log_schema_changes writes count their uncompressed size (1.8 MB). The
--     whole-document rule compares uncompressed sizes now, as documented: the deltas since a whole document never
--     outgrow that document's uncompressed size, so composing any version still reads at most about twice it;
--   * ~0.4 ms was describe_relation() (0013): a SQL function with a SET clause is never inlined, so its query, and
--     describe_sequence()'s and describe_materialized_view()'s, were parsed and planned again at every call.
--     PL/pgSQL keeps the plans for the session; the results are unchanged.
-- The other statements of a DDL's logging run on plans cached for the session (one plan each in
-- pg_stat_statements); the lookups of the sequences a changed table owns (0013) are index scans of pg_depend and
-- schema_tables costing ~0.02 ms per DDL together.
--
-- ALTER SEQUENCE ... SET SCHEMA and ALTER MATERIALIZED VIEW ... SET SCHEMA now remove the object from the version
-- of the schema it left (it was only added to the new one's): pgstream.object_schemas records, like table_ids does
-- for tables, the schema each sequence and materialized view was last logged in.

CREATE OR REPLACE FUNCTION pgstream.describe_sequence(seq oid)
RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN (
        SELECT jsonb_build_object(
            'oid', c.oid::text,
            'name', c.relname,
            'data_type', format_type(s.seqtypid, NULL),
            'start', s.seqstart,
            'increment', s.seqincrement,
            'min', s.seqmin,
            'max', s.seqmax,
            'cache', s.seqcache,
            'cycle', s.seqcycle,
            -- OWNED BY (deptype 'a') or an identity column's sequence (deptype 'i').
            'owned_by', (SELECT jsonb_build_object('table', d.refobjid::regclass::text,
                                                   'column', a.attname,
                                                   'identity', d.deptype = 'i')
                         FROM pg_depend d
                         JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                           AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
                         LIMIT 1))
        FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid
        WHERE c.oid = seq AND c.relkind = 'S');
END
$$;

CREATE OR REPLACE FUNCTION pgstream.describe_materialized_view(view oid)
RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN (
        SELECT jsonb_build_object(
            'oid', c.oid::text,
            'name', c.relname,
            'columns', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                   'name', a.attname,
                                   'type', format_type(a.atttypid, a.atttypmod),
                                   'nullable', NOT a.attnotnull) ORDER BY a.attnum), '[]'::jsonb)
                        FROM pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
            'definition', pg_get_viewdef(c.oid))
        FROM pg_class c
        WHERE c.oid = view AND c.relkind = 'm');
END
$$;

CREATE OR REPLACE FUNCTION pgstream.describe_relation(rel oid)
RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    kind "char" := (SELECT c.relkind FROM pg_class c WHERE c.oid = rel);
BEGIN
    RETURN CASE kind
               WHEN 'S' THEN jsonb_build_object('kind', 'sequences', 'description', pgstream.describe_sequence(rel))
               WHEN 'm' THEN jsonb_build_object('kind', 'materialized_views',
                                                'description', pgstream.describe_materialized_view(rel))
               WHEN 'r' THEN jsonb_build_object('kind', 'tables', 'description', pgstream.describe_table(rel))
               WHEN 'p' THEN jsonb_build_object('kind', 'tables', 'description', pgstream.describe_table(rel))
           END;
END
$$;

-- sync_schema_tables of 0013, recording the document's uncompressed size (the sum of its descriptions' sizes, as
-- the deltas count theirs): a document read back from schema_log_entries is compressed, and pg_column_size gave its
-- stored size, an eighth to a sixteenth of it.
CREATE OR REPLACE FUNCTION pgstream.sync_schema_tables(target text, version_id pgstream.xid, document jsonb)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM pgstream.schema_tables WHERE schema_name = target;
    INSERT INTO pgstream.schema_tables (schema_name, oid, description, kind, owner)
    SELECT target, (t ->> 'oid')::oid, t, kinds.kind,
           CASE WHEN kinds.kind = 'sequences' THEN pgstream.sequence_owner((t ->> 'oid')::oid) END
    FROM (VALUES ('tables'), ('sequences'), ('materialized_views')) AS kinds(kind),
         jsonb_array_elements(CASE WHEN jsonb_typeof(document -> kinds.kind) = 'array'
                                   THEN document -> kinds.kind ELSE '[]' END) AS t;
    INSERT INTO pgstream.schema_tables_synced (schema_name, version_id, full_bytes, delta_bytes)
    VALUES (target, version_id,
            (SELECT coalesce(sum(pg_column_size(t)), 0)
             FROM (VALUES ('tables'), ('sequences'), ('materialized_views')) AS kinds(kind),
                  jsonb_array_elements(CASE WHEN jsonb_typeof(document -> kinds.kind) = 'array'
                                            THEN document -> kinds.kind ELSE '[]' END) AS t),
            0)
    ON CONFLICT (schema_name) DO UPDATE
    SET version_id = excluded.version_id, full_bytes = excluded.full_bytes, delta_bytes = 0;
$$;

-- The schema each sequence and materialized view was last logged in (table_ids has the tables'): how
-- ALTER SEQUENCE/MATERIALIZED VIEW ... SET SCHEMA and schema renames find the schema the object left. The row is
-- deleted with the object.
CREATE TABLE IF NOT EXISTS pgstream.object_schemas (
    oid         oid PRIMARY KEY,
    schema_name text NOT NULL
);
INSERT INTO pgstream.object_schemas (oid, schema_name)
SELECT c.oid, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('S', 'm') AND c.relpersistence <> 't' AND NOT pgstream.is_system_schema(n.nspname)
ON CONFLICT (oid) DO NOTHING;

-- get_schema of 0013, recording where the schema's sequences and materialized views are logged (as it mints the
-- tables' ids): refresh_schema() after DDL that was not logged keeps SET SCHEMA working.
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

    INSERT INTO pgstream.object_schemas (oid, schema_name)
    SELECT c.oid, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = get_schema.schema_name AND c.relkind IN ('S', 'm') AND c.relpersistence <> 't'
    ON CONFLICT (oid) DO UPDATE SET schema_name = excluded.schema_name
    WHERE object_schemas.schema_name IS DISTINCT FROM excluded.schema_name;

    SELECT coalesce(jsonb_agg(pgstream.describe_table(c.oid) ORDER BY c.relname), '[]'::jsonb) INTO described
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = get_schema.schema_name AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't';

    RETURN jsonb_build_object('tables', described) || pgstream.describe_other_objects(schema_name);
END
$$;

-- log_schema_changes of 0013: the schema a sequence or materialized view left (object_schemas) is logged too.
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
            -- it would cost every DDL a pass over the database's constraints).
            SELECT con.conrelid
            FROM pg_depend dep JOIN pg_constraint con ON con.oid = dep.objid
            WHERE dep.refclassid = 'pg_class'::regclass AND dep.refobjid = ANY(changed_tables)
              AND dep.classid = 'pg_constraint'::regclass AND con.contype = 'f' AND con.confrelid = dep.refobjid
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
              AND dep.classid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
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
REVOKE ALL ON ALL TABLES IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (14, 'fixed_cost_and_set_schema')
ON CONFLICT (version) DO NOTHING;
