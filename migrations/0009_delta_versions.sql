-- 0009: delta versions, a DDL's cost proportional to the change (SET pgstream.schema_versions = delta).
--
-- A full version repeats the whole schema: at 5,000 tables every DDL decompresses the previous ~6 MB document,
-- copies it, compresses the new one and writes ~470 kB of WAL, ~17x the DDL itself however cheap the composition
-- (0007). With pgstream.schema_versions = delta (a custom setting: ALTER DATABASE ... SET, ALTER ROLE ... SET, or
-- per session) a version carries only the change:
--
--   {"delta": {"base_version": 41, "removed": ["16471"]}, "changed": [<table description>, ...]}
--
-- "changed" are the tables described again (same description as in a full version), "removed" the oids of tables
-- that left the schema; version base_version + 1 is base_version's tables with these applied, in name order.
-- pgstream.schema_at(schema, version) composes the full document of any version, and the view
-- pgstream.schema_log_full shows schema_log with every schema as the full document, byte-equal to a full version.
-- The shipper's translator composes deltas from the stream itself. A schema's first version, the first after a
-- drop, "dropped" markers and refresh_schema() stay full documents; the default (full) is unchanged.
--
-- To know whether a table changed without reading the previous document, delta mode keeps the current description
-- of each table in pgstream.schema_tables (one row per table, updated with the version); schema_tables_synced
-- says which version they reflect. A version written in full mode (or by refresh_schema) leaves them behind; the
-- next delta version then reloads them from the full document once.

CREATE TABLE IF NOT EXISTS pgstream.schema_tables (
    schema_name text  NOT NULL,
    oid         oid   NOT NULL,
    description jsonb NOT NULL,
    PRIMARY KEY (schema_name, oid)
);

-- By id, not version number: tear_down() truncates schema_log and the numbers start again.
CREATE TABLE IF NOT EXISTS pgstream.schema_tables_synced (
    schema_name text         PRIMARY KEY,
    version_id  pgstream.xid NOT NULL
);

-- 'delta' when versions are written as deltas; an unknown value is an error (the DDL fails and says why) rather
-- than a silent fallback to the format the consumers were not told about.
CREATE OR REPLACE FUNCTION pgstream.delta_versions()
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    mode text := lower(coalesce(nullif(current_setting('pgstream.schema_versions', true), ''), 'full'));
BEGIN
    IF mode NOT IN ('full', 'delta') THEN
        RAISE EXCEPTION 'pgstream.schema_versions must be full or delta, not "%"', mode
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN mode = 'delta';
END
$$;

-- The full document of version `version` of a schema: the newest full document at or before it, with the deltas
-- after it applied (for each table oid the newest description or removal wins), tables in name order as
-- get_schema() orders them. NULL when the version does not exist.
CREATE OR REPLACE FUNCTION pgstream.schema_at(schema_name text, version bigint)
RETURNS jsonb
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    WITH base AS (
        SELECT l.version, l.schema FROM pgstream.schema_log l
        WHERE l.schema_name = schema_at.schema_name AND l.version <= schema_at.version AND NOT l.schema ? 'delta'
        ORDER BY l.version DESC LIMIT 1
    ), deltas AS (
        SELECT l.version, l.schema FROM pgstream.schema_log l, base
        WHERE l.schema_name = schema_at.schema_name AND l.version > base.version AND l.version <= schema_at.version
    ), entries AS (
        SELECT t AS description, base.version
        FROM base, jsonb_array_elements(CASE WHEN jsonb_typeof(base.schema -> 'tables') = 'array'
                                             THEN base.schema -> 'tables' ELSE '[]' END) AS t
        UNION ALL
        SELECT c, deltas.version FROM deltas, jsonb_array_elements(deltas.schema -> 'changed') AS c
        UNION ALL
        SELECT jsonb_build_object('oid', r #>> '{}', 'removed', true), deltas.version
        FROM deltas, jsonb_array_elements(deltas.schema -> 'delta' -> 'removed') AS r
    ), current AS (
        SELECT DISTINCT ON (description ->> 'oid') description
        FROM entries ORDER BY description ->> 'oid', version DESC
    )
    SELECT CASE WHEN NOT EXISTS (SELECT FROM deltas) THEN (SELECT schema FROM base)
                ELSE (SELECT jsonb_build_object('tables',
                                 coalesce(jsonb_agg(description ORDER BY (description ->> 'name') COLLATE "C")
                                              FILTER (WHERE NOT description ? 'removed'), '[]'::jsonb))
                      FROM current) END
    WHERE EXISTS (SELECT FROM pgstream.schema_log l
                  WHERE l.schema_name = schema_at.schema_name AND l.version = schema_at.version)
$$;

-- schema_log with every version's schema as the full document (deltas composed by schema_at). Readers that want the
-- full schema whatever the mode read this view; with only full versions it shows schema_log's rows as they are.
CREATE OR REPLACE VIEW pgstream.schema_log_full AS
SELECT l.id, l.version, l.schema_name,
       CASE WHEN l.schema ? 'delta' THEN pgstream.schema_at(l.schema_name, l.version) ELSE l.schema END AS schema,
       l.created_at, l.acked, l.wal_position
FROM pgstream.schema_log l;

-- Makes schema_tables reflect the schema's version `version_id` (its full document `document`).
CREATE OR REPLACE FUNCTION pgstream.sync_schema_tables(target text, version_id pgstream.xid, document jsonb)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM pgstream.schema_tables WHERE schema_name = target;
    INSERT INTO pgstream.schema_tables (schema_name, oid, description)
    SELECT target, (t ->> 'oid')::oid, t
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(document -> 'tables') = 'array'
                                   THEN document -> 'tables' ELSE '[]' END) AS t;
    INSERT INTO pgstream.schema_tables_synced (schema_name, version_id) VALUES (target, version_id)
    ON CONFLICT (schema_name) DO UPDATE SET version_id = excluded.version_id;
$$;

-- The tables of a schema's latest version, full document or delta: from schema_tables when they reflect it
-- (no document read), else from the composed document.
CREATE OR REPLACE FUNCTION pgstream.latest_tables(schema_name text)
RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    latest   record;
    document jsonb;
BEGIN
    SELECT l.version, l.id INTO latest FROM pgstream.schema_log l
    WHERE l.schema_name = latest_tables.schema_name ORDER BY l.version DESC LIMIT 1;
    IF latest.version IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pgstream.schema_tables_synced s
               WHERE s.schema_name = latest_tables.schema_name AND s.version_id = latest.id) THEN
        RETURN QUERY SELECT st.description FROM pgstream.schema_tables st
                     WHERE st.schema_name = latest_tables.schema_name;
        RETURN;
    END IF;
    document := pgstream.schema_at(schema_name, latest.version);
    IF jsonb_typeof(document -> 'tables') = 'array' THEN
        RETURN QUERY SELECT t FROM jsonb_array_elements(document -> 'tables') AS t;
    END IF;
END
$$;

-- Inserts version `version` of a schema. Under REPEATABLE READ/SERIALIZABLE a concurrent transaction may have
-- committed a newer version this snapshot cannot see; the unique index catches it and the caller must retry, as for
-- any serialization conflict. Returns the new version's id.
CREATE OR REPLACE FUNCTION pgstream.insert_version(target text, version bigint, document jsonb)
RETURNS pgstream.xid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    new_id pgstream.xid;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        BEGIN
            INSERT INTO pgstream.schema_log (version, schema_name, schema)
            VALUES (insert_version.version, target, document) RETURNING id INTO new_id;
        EXCEPTION WHEN unique_violation THEN
            RAISE EXCEPTION 'pgstream: a concurrent transaction logged a newer version of schema "%"', target
                USING ERRCODE = 'serialization_failure',
                      HINT = 'Retry the transaction; DDL on one schema is logged in commit order.';
        END;
    ELSE
        INSERT INTO pgstream.schema_log (version, schema_name, schema)
        VALUES (insert_version.version, target, document) RETURNING id INTO new_id;
    END IF;
    RETURN new_id;
END
$$;

-- Writes the new versions (see 0007 for the arguments); in delta mode (delta_versions()) a version of a schema whose
-- previous version is known is a delta: the touched tables whose description changed, and those that left.
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
        ) AS expanded(rel)
        WHERE rel IS NOT NULL;
    END IF;

    SELECT coalesce(array_agg(rel), '{}') INTO live_tables
    FROM unnest(changed_tables) AS rel WHERE pgstream.is_logged_table(rel);

    -- Every schema a table is in now or was last logged in (SET SCHEMA and schema renames leave one behind).
    SELECT coalesce(array_agg(DISTINCT name ORDER BY name), '{}') INTO schemas
    FROM (
        SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY(live_tables)
        UNION ALL
        SELECT t.schema_name FROM pgstream.table_ids t
        WHERE t.oid = ANY(changed_tables) OR t.oid = ANY(removed_tables)
        UNION ALL
        SELECT unnest(touched_schemas)
        UNION ALL
        SELECT unnest(dropped_schemas)
    ) AS involved(name)
    WHERE name IS NOT NULL AND NOT pgstream.is_system_schema(name);

    PERFORM pgstream.table_id(rel) FROM unnest(live_tables) AS rel;

    FOREACH target IN ARRAY schemas LOOP
        -- Versions of one schema are numbered in commit order: concurrent DDL on the same schema waits here.
        PERFORM pg_advisory_xact_lock(1885827956, hashtext(target));

        IF target = ANY(dropped_schemas) OR NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = target) THEN
            previous := NULL;
            SELECT l.version, l.schema INTO previous
            FROM pgstream.schema_log l WHERE l.schema_name = target ORDER BY l.version DESC LIMIT 1;
            described := '{"tables": null, "dropped": true}';
            CONTINUE WHEN previous.schema IS NOT DISTINCT FROM described;
            PERFORM pgstream.insert_version(target, coalesce(previous.version, 0) + 1, described);
            written := written + 1;
            -- The dropped marker supersedes the schema's history (as in the Go pgstream).
            DELETE FROM pgstream.schema_log WHERE schema_name = target AND version <= coalesce(previous.version, 0);
            DELETE FROM pgstream.schema_tables WHERE schema_name = target;
            DELETE FROM pgstream.schema_tables_synced WHERE schema_name = target;
            CONTINUE;
        END IF;

        new_tables := ARRAY(SELECT pgstream.describe_table(c.oid)
                            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE c.oid = ANY(live_tables) AND n.nspname = target);

        IF NOT delta_mode THEN
            previous := NULL;
            SELECT l.version, l.schema INTO previous
            FROM pgstream.schema_log l WHERE l.schema_name = target ORDER BY l.version DESC LIMIT 1;
            -- Untouched tables are copied from the previous version as they are, touched ones described again
            -- (see compose_tables, 0007). The previous version is read (decompressed) once, by compose_tables.
            -- Two statements: the call below is then a "simple expression" that PL/pgSQL evaluates without going
            -- through SPI, which would copy the multi-megabyte result into a tuple once more.
            IF previous.schema ? 'delta' THEN
                -- Back from delta mode: compose from the previous version's full document.
                previous.schema := pgstream.schema_at(target, previous.version);
            END IF;
            described := CASE WHEN previous.schema IS NULL THEN 'null'::jsonb
                              ELSE pgstream.compose_tables(previous.schema, changed_tables || removed_tables,
                                                           new_tables) END;
            modified := described IS NOT NULL;
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
        FROM pgstream.schema_log l WHERE l.schema_name = target ORDER BY l.version DESC LIMIT 1;
        base_known := previous.version IS NOT NULL
                      AND EXISTS (SELECT FROM pgstream.schema_tables_synced s
                                  WHERE s.schema_name = target AND s.version_id = previous.id);
        IF previous.version IS NOT NULL AND NOT base_known THEN
            -- Written in full mode or by refresh_schema: reload the current descriptions once.
            described := pgstream.schema_at(target, previous.version);
            IF jsonb_typeof(described -> 'tables') = 'array' AND NOT described ? 'dropped' THEN
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
        SELECT coalesce(jsonb_agg(d ORDER BY (d ->> 'name') COLLATE "C"), '[]') INTO changed
        FROM unnest(new_tables) AS d
        WHERE d IS NOT NULL
          AND NOT EXISTS (SELECT FROM pgstream.schema_tables st
                          WHERE st.schema_name = target AND st.oid = (d ->> 'oid')::oid AND st.description = d);
        SELECT coalesce(jsonb_agg(st.oid::text ORDER BY st.oid), '[]') INTO removed
        FROM pgstream.schema_tables st
        WHERE st.schema_name = target AND st.oid = ANY(changed_tables || removed_tables)
          AND NOT EXISTS (SELECT FROM unnest(new_tables) AS d WHERE (d ->> 'oid')::oid = st.oid);
        CONTINUE WHEN changed = '[]' AND removed = '[]';

        new_id := pgstream.insert_version(target, previous.version + 1,
                                          jsonb_build_object('delta', jsonb_build_object('base_version', previous.version,
                                                                                        'removed', removed),
                                                             'changed', changed));
        written := written + 1;
        DELETE FROM pgstream.schema_tables st
        WHERE st.schema_name = target AND st.oid::text IN (SELECT jsonb_array_elements_text(removed));
        INSERT INTO pgstream.schema_tables (schema_name, oid, description)
        SELECT target, (d ->> 'oid')::oid, d FROM jsonb_array_elements(changed) AS d
        ON CONFLICT (schema_name, oid) DO UPDATE SET description = excluded.description;
        UPDATE pgstream.schema_tables_synced SET version_id = new_id WHERE schema_name = target;
    END LOOP;

    DELETE FROM pgstream.table_ids WHERE oid = ANY(removed_tables);
    RETURN written;
END
$$;

-- The event trigger function of 0004, with DROP INDEX finding the index's table in latest_tables() (the latest
-- version may be a delta).
CREATE OR REPLACE FUNCTION pgstream.log_schema()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed oid[] := '{}';
    removed oid[] := '{}';
    touched text[] := '{}';
    dropped text[] := '{}';
BEGIN
    IF pgstream.is_skip_log() THEN
        RETURN;
    END IF;

    IF TG_EVENT = 'ddl_command_end' THEN
        -- A table created just now cannot own an existing mapping: that one belonged to a dropped table whose oid
        -- was reused while logging was off. The new table gets a new id.
        DELETE FROM pgstream.table_ids t
        USING pg_event_trigger_ddl_commands() cmd
        WHERE cmd.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
          AND cmd.object_type = 'table' AND t.oid = cmd.objid;

        WITH cmd AS (
            SELECT c.classid, c.objid, c.command_tag
            FROM pg_event_trigger_ddl_commands() c
            WHERE c.objid <> 0 AND NOT coalesce(pgstream.is_system_schema(c.schema_name), false)
        )
        SELECT coalesce(array_agg(DISTINCT rel), '{}') INTO changed
        FROM (
            -- tables, and the tables of indexes
            SELECT CASE WHEN r.relkind IN ('i', 'I') THEN i.indrelid ELSE r.oid END
            FROM cmd
            JOIN pg_class r ON r.oid = cmd.objid
            LEFT JOIN pg_index i ON i.indexrelid = r.oid
            WHERE cmd.classid = 'pg_class'::regclass AND r.relkind IN ('r', 'p', 'i', 'I')
            UNION ALL
            -- tables whose column types or defaults name a type, function or sequence that changed
            SELECT dep
            FROM cmd, LATERAL pgstream.dependent_tables(cmd.classid, cmd.objid) AS dep
            WHERE cmd.classid IN ('pg_type'::regclass, 'pg_proc'::regclass)
               OR (cmd.classid = 'pg_class'::regclass
                   AND EXISTS (SELECT FROM pg_class s WHERE s.oid = cmd.objid AND s.relkind = 'S'))
            UNION ALL
            -- every table of a renamed schema
            SELECT r.oid
            FROM cmd JOIN pg_class r ON r.relnamespace = cmd.objid
            WHERE cmd.classid = 'pg_namespace'::regclass AND cmd.command_tag = 'ALTER SCHEMA'
        ) AS affected(rel)
        WHERE rel IS NOT NULL;

        SELECT coalesce(array_agg(n.nspname), '{}') INTO touched
        FROM pg_event_trigger_ddl_commands() cmd JOIN pg_namespace n ON n.oid = cmd.objid
        WHERE cmd.classid = 'pg_namespace'::regclass;

    ELSIF TG_EVENT = 'sql_drop' THEN
        -- ALTER TABLE ... DROP COLUMN/CONSTRAINT and the like are logged by their own ddl_command_end.
        IF TG_TAG NOT LIKE 'DROP %' THEN
            RETURN;
        END IF;

        WITH d AS (
            SELECT * FROM pg_event_trigger_dropped_objects() o
            WHERE NOT o.is_temporary AND NOT coalesce(pgstream.is_system_schema(o.schema_name), false)
        )
        SELECT coalesce(array_agg(d.objid) FILTER (WHERE d.object_type = 'table'), '{}'),
               coalesce(array_agg(DISTINCT d.schema_name) FILTER (WHERE d.object_type IN ('table', 'index')), '{}'),
               coalesce(array_agg(d.object_name) FILTER (WHERE d.object_type = 'schema'), '{}')
        INTO removed, touched, dropped
        FROM d;

        -- Tables that lost a column (DROP TYPE ... CASCADE), a default (DROP SEQUENCE/FUNCTION ... CASCADE), a
        -- constraint or an index but still exist. A dropped index no longer names its table in the catalogs; the
        -- last logged version of its schema does.
        WITH d AS (
            SELECT * FROM pg_event_trigger_dropped_objects() o
            WHERE NOT o.is_temporary AND NOT coalesce(pgstream.is_system_schema(o.schema_name), false)
        )
        SELECT coalesce(array_agg(DISTINCT rel), '{}') INTO changed
        FROM (
            SELECT d.objid FROM d WHERE d.object_type = 'table column'
            UNION ALL
            SELECT to_regclass(format('%I.%I', d.address_names[1], d.address_names[2]))::oid
            FROM d WHERE d.object_type IN ('default value', 'table constraint')
            UNION ALL
            SELECT (t ->> 'oid')::oid
            FROM d
            -- The latest version's tables, whether it is a full document or a delta (see latest_tables).
            CROSS JOIN LATERAL pgstream.latest_tables(d.schema_name) AS t
            WHERE d.object_type = 'index'
              AND t -> 'indexes' @> jsonb_build_array(jsonb_build_object('name', d.object_name))
        ) AS affected(rel)
        WHERE rel IS NOT NULL AND NOT rel = ANY(removed);
    ELSE
        RETURN;
    END IF;

    IF cardinality(changed) + cardinality(removed) + cardinality(touched) + cardinality(dropped) > 0 THEN
        PERFORM pgstream.log_schema_changes(changed, removed, touched, dropped);
    END IF;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgstream FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (9, 'delta_versions') ON CONFLICT (version) DO NOTHING;
