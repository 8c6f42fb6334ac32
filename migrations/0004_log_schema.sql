-- 0004: writing schema versions.
--
-- pgstream.log_schema_changes() writes one new version per affected schema. A version is composed from the schema's
-- previous version: tables the statement did not touch are copied over as they were, touched tables are described
-- again from the catalogs. Rebuilding every table of the schema on every DDL (what the Go pgstream does) makes DDL in
-- a schema with many tables slower with each table; composing keeps the catalog work proportional to the change.
-- A schema's first version (or the first after it was dropped) is built from the catalogs in full.
-- A version identical to the previous one (GRANT, CREATE TRIGGER, ALTER TABLE SET (fillfactor ...), ...) is not
-- written, so every version in the stream is a real change.

-- pgstream.skip_log = on turns logging off for the session, but only for a superuser: any role may set a custom
-- setting, and an ordinary table owner must not be able to hide a DDL from the stream.
CREATE OR REPLACE FUNCTION pgstream.is_skip_log()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT lower(coalesce(current_setting('pgstream.skip_log', true), '')) IN ('on', 'true', 'yes', '1')
       AND coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
$$;

-- Tables whose description depends on an object by more than its oid: columns of a type (or of its array type),
-- defaults and generated columns that call a function or use a sequence. Renaming such an object changes the
-- "type" or "default" text of these tables' columns.
CREATE OR REPLACE FUNCTION pgstream.dependent_tables(class oid, object oid)
RETURNS SETOF oid
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT coalesce(ad.adrelid, d.objid)
    FROM pg_depend d
    LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
    WHERE d.refclassid = class
      AND (d.refobjid = object
           OR d.refobjid = (SELECT t.typarray FROM pg_type t WHERE class = 'pg_type'::regclass AND t.oid = object))
      AND (d.classid = 'pg_attrdef'::regclass OR (d.classid = 'pg_class'::regclass AND d.objsubid > 0))
$$;

-- Writes the new versions. changed_tables: tables (any schema) to describe again, inheritance children included
-- automatically; removed_tables: dropped tables; touched_schemas: schemas to log even if no table of them changed
-- (CREATE SCHEMA, a table dropped before it was ever logged); dropped_schemas: schemas that no longer exist.
-- Returns the number of versions written.
CREATE OR REPLACE FUNCTION pgstream.log_schema_changes(
    changed_tables  oid[],
    removed_tables  oid[]  DEFAULT '{}',
    touched_schemas text[] DEFAULT '{}',
    dropped_schemas text[] DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    live_tables oid[];
    schemas     text[];
    target      text;
    previous    record;
    described   jsonb;
    written     integer := 0;
    retryable   boolean := current_setting('transaction_isolation') <> 'read committed';
    touched_rel  oid;
    table_name   name;
    table_json   jsonb;
    old_position bigint;
    new_position bigint;
    modified     boolean;
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
        previous := NULL;
        SELECT l.version, l.schema INTO previous
        FROM pgstream.schema_log l WHERE l.schema_name = target ORDER BY l.version DESC LIMIT 1;

        modified := true;
        IF target = ANY(dropped_schemas) OR NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = target) THEN
            described := '{"tables": null, "dropped": true}';
            modified := previous.schema IS DISTINCT FROM described;
        ELSIF previous.schema IS NULL
              OR jsonb_typeof(previous.schema -> 'tables') IS DISTINCT FROM 'array'
              OR previous.schema ? 'dropped' THEN
            described := pgstream.get_schema(target);
            modified := previous.schema IS DISTINCT FROM described;
        ELSIF cardinality(changed_tables) + cardinality(removed_tables) > 8 THEN
            -- Many tables at once (DROP SCHEMA elsewhere, a type used everywhere): one pass that re-aggregates
            -- the untouched tables with the touched ones described again.
            SELECT jsonb_build_object('tables', coalesce(jsonb_agg(t ORDER BY (t ->> 'name') COLLATE "C"), '[]'::jsonb))
            INTO described
            FROM (
                SELECT e FROM jsonb_array_elements(previous.schema -> 'tables') AS e
                WHERE NOT ((e ->> 'oid')::oid = ANY(changed_tables) OR (e ->> 'oid')::oid = ANY(removed_tables))
                UNION ALL
                SELECT pgstream.describe_table(c.oid)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.oid = ANY(live_tables) AND n.nspname = target
            ) AS composed(t);
            modified := previous.schema IS DISTINCT FROM described;
        ELSE
            -- Edit the previous version in place, one touched table at a time: each edit is a single pass over
            -- the binary JSON, where re-aggregating the array would take several times as long.
            described := previous.schema;
            modified := false;
            FOR touched_rel, table_name, table_json IN
                SELECT t.rel, c.relname, pgstream.describe_table(c.oid)
                FROM (SELECT (e ->> 'oid')::oid FROM jsonb_array_elements(previous.schema -> 'tables') AS e
                      WHERE (e ->> 'oid')::oid = ANY(changed_tables) OR (e ->> 'oid')::oid = ANY(removed_tables)
                      UNION
                      SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE c.oid = ANY(live_tables) AND n.nspname = target) AS t(rel)
                LEFT JOIN (pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = target)
                       ON c.oid = t.rel AND c.oid = ANY(live_tables)
            LOOP
                -- Where the table is now (0-based), and where it belongs in the name order without it.
                SELECT min(o) FILTER (WHERE (e ->> 'oid')::oid = touched_rel) - 1,
                       count(*) FILTER (WHERE (e ->> 'oid')::oid <> touched_rel
                                          AND (e ->> 'name') COLLATE "C" < table_name::text COLLATE "C")
                INTO old_position, new_position
                FROM jsonb_array_elements(described -> 'tables') WITH ORDINALITY AS x(e, o);

                IF table_json IS NULL THEN
                    IF old_position IS NOT NULL THEN
                        described := described #- ARRAY['tables', old_position::text];
                        modified := true;
                    END IF;
                ELSIF old_position IS NOT NULL AND old_position = new_position THEN
                    IF described -> 'tables' -> old_position::integer <> table_json THEN
                        described := jsonb_set(described, ARRAY['tables', old_position::text], table_json);
                        modified := true;
                    END IF;
                ELSE
                    modified := true;
                    IF old_position IS NOT NULL THEN
                        described := described #- ARRAY['tables', old_position::text];
                    END IF;
                    described := jsonb_insert(described, ARRAY['tables', new_position::text], table_json);
                END IF;
            END LOOP;
        END IF;

        CONTINUE WHEN NOT modified;

        IF retryable THEN
            -- Under REPEATABLE READ a concurrent transaction may have committed a newer version this snapshot cannot
            -- see; the unique index catches it and the caller must retry, as for any serialization conflict.
            BEGIN
                INSERT INTO pgstream.schema_log (version, schema_name, schema)
                VALUES (coalesce(previous.version, 0) + 1, target, described);
            EXCEPTION WHEN unique_violation THEN
                RAISE EXCEPTION 'pgstream: a concurrent transaction logged a newer version of schema "%"', target
                    USING ERRCODE = 'serialization_failure',
                          HINT = 'Retry the transaction; DDL on one schema is logged in commit order.';
            END;
        ELSE
            INSERT INTO pgstream.schema_log (version, schema_name, schema)
            VALUES (coalesce(previous.version, 0) + 1, target, described);
        END IF;
        written := written + 1;

        IF described ? 'dropped' THEN
            -- The dropped marker supersedes the schema's history (as in the Go pgstream).
            DELETE FROM pgstream.schema_log WHERE schema_name = target AND version <= coalesce(previous.version, 0);
        END IF;
    END LOOP;

    DELETE FROM pgstream.table_ids WHERE oid = ANY(removed_tables);
    RETURN written;
END
$$;

-- Logs a new version of a schema built from the catalogs in full, if it differs from the last one: for tables that
-- existed before pgstream was installed, after DDL run with pgstream.skip_log = on, or to repair a version by hand.
CREATE OR REPLACE FUNCTION pgstream.refresh_schema(schema_name text)
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    written integer;
BEGIN
    IF pgstream.is_system_schema(schema_name) THEN
        RAISE EXCEPTION 'pgstream.refresh_schema: schema "%" is never logged', schema_name;
    END IF;
    PERFORM pg_advisory_xact_lock(1885827956, hashtext(schema_name));
    -- Forgetting the previous version forces a full build; the identical-version check still applies.
    WITH latest AS (
        SELECT l.version, l.schema FROM pgstream.schema_log l
        WHERE l.schema_name = refresh_schema.schema_name ORDER BY l.version DESC LIMIT 1
    ), rebuilt AS (
        SELECT CASE WHEN EXISTS (SELECT FROM pg_namespace WHERE nspname = refresh_schema.schema_name)
                    THEN pgstream.get_schema(refresh_schema.schema_name)
                    ELSE '{"tables": null, "dropped": true}'::jsonb END AS schema
    ), inserted AS (
        INSERT INTO pgstream.schema_log (version, schema_name, schema)
        SELECT coalesce((SELECT version FROM latest), 0) + 1, refresh_schema.schema_name, rebuilt.schema
        FROM rebuilt
        WHERE rebuilt.schema IS DISTINCT FROM (SELECT schema FROM latest)
        RETURNING 1
    )
    SELECT count(*) INTO written FROM inserted;
    RETURN written;
END
$$;

-- The event trigger function, for ddl_command_end and sql_drop. It runs inside the DDL's transaction; if it fails,
-- the DDL fails with it (a DDL that reaches the data stream without its schema version would be worse). Set
-- pgstream.skip_log = on to run DDL without logging, then call pgstream.refresh_schema().
-- SECURITY DEFINER: a table owner's DDL is logged without the owner having any right on schema pgstream.
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
            JOIN LATERAL (SELECT l.schema FROM pgstream.schema_log l
                          WHERE l.schema_name = d.schema_name ORDER BY l.version DESC LIMIT 1) AS latest ON true
            CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(latest.schema -> 'tables') = 'array'
                                                         THEN latest.schema -> 'tables' ELSE '[]' END) AS t
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

INSERT INTO pgstream.migrations (version, name) VALUES (4, 'log_schema') ON CONFLICT (version) DO NOTHING;
