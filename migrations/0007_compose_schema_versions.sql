-- 0007: composing a schema version at the cost of the change.
--
-- Until 0006 a version was edited with jsonb_set()/jsonb_insert() one touched table at a time; each edit unpacks and
-- re-serializes the whole document, so DDL cost grew with the number of tables in the schema (about 30 ms per
-- statement at 1,000 tables, 23x the DDL itself). pgstream.compose_tables() builds the new version from the previous
-- one by copying the untouched tables' binary JSON as byte ranges and merging in the touched tables' new
-- descriptions. The document is unchanged: the full schema, in the same format, equal to a full rebuild.
--
-- compose_tables is C (extension/schema_compose.cpp) where the pgstream library is installed and the installing role
-- may create C functions; otherwise (`pgstream init` on a server without the library, or without superuser) the
-- SQL version below is used, with the same result and the old cost.

-- compose_tables(previous, touched, described): the previous version minus the touched tables and those described
-- again, plus the new descriptions, in name order, other members kept. Returns SQL NULL if that equals the previous
-- version (nothing to log), and JSON null if the previous version cannot be composed from (a "dropped" marker, no
-- "tables" array): the caller builds it from the catalogs. Telling both apart from the result lets the caller read
-- the (large, compressed) previous version only once. This is the SQL version of it.
CREATE OR REPLACE FUNCTION pgstream.compose_tables_sql(previous jsonb, touched oid[], described jsonb[])
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    composed     jsonb := previous;
    modified     boolean := false;
    touched_rel  oid;
    table_json   jsonb;
    old_position bigint;
    new_position bigint;
BEGIN
    IF previous IS NULL THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(previous) IS DISTINCT FROM 'object' OR jsonb_typeof(previous -> 'tables') IS DISTINCT FROM 'array'
       OR previous ? 'dropped' THEN
        RETURN 'null'::jsonb;
    END IF;
    -- One touched table at a time, edited in place (each edit is one pass over the binary JSON; re-aggregating the
    -- array would take several times as long).
    FOR touched_rel, table_json IN
        SELECT t.rel, d.doc
        FROM (SELECT unnest(coalesce(touched, '{}'))
              UNION
              SELECT (d ->> 'oid')::oid FROM unnest(described) AS d WHERE d IS NOT NULL) AS t(rel)
        LEFT JOIN (SELECT d AS doc FROM unnest(described) AS d WHERE d IS NOT NULL) AS d
               ON (d.doc ->> 'oid')::oid = t.rel
    LOOP
        -- Where the table is now (0-based), and where it belongs in the name order without it.
        SELECT min(o) FILTER (WHERE (e ->> 'oid')::oid = touched_rel) - 1,
               count(*) FILTER (WHERE (e ->> 'oid')::oid IS DISTINCT FROM touched_rel
                                  AND (e ->> 'name') COLLATE "C" < (table_json ->> 'name') COLLATE "C")
        INTO old_position, new_position
        FROM jsonb_array_elements(composed -> 'tables') WITH ORDINALITY AS x(e, o);

        IF table_json IS NULL THEN
            IF old_position IS NOT NULL THEN
                composed := composed #- ARRAY['tables', old_position::text];
                modified := true;
            END IF;
        ELSIF old_position IS NOT NULL AND old_position = new_position THEN
            IF composed -> 'tables' -> old_position::integer <> table_json THEN
                composed := jsonb_set(composed, ARRAY['tables', old_position::text], table_json);
                modified := true;
            END IF;
        ELSE
            modified := true;
            IF old_position IS NOT NULL THEN
                composed := composed #- ARRAY['tables', old_position::text];
            END IF;
            composed := jsonb_insert(composed, ARRAY['tables', new_position::text], table_json);
        END IF;
    END LOOP;
    RETURN CASE WHEN modified THEN composed END;
END
$$;

CREATE OR REPLACE FUNCTION pgstream.compose_tables(previous jsonb, touched oid[], described jsonb[])
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pgstream.compose_tables_sql(previous, touched, described) $$;

DO $$
BEGIN
    CREATE OR REPLACE FUNCTION pgstream.compose_tables(previous jsonb, touched oid[], described jsonb[])
    RETURNS jsonb
    LANGUAGE c IMMUTABLE
    AS '$libdir/pgstream', 'pgstream_compose_tables';
EXCEPTION WHEN undefined_file OR undefined_function OR insufficient_privilege THEN
    -- Keeps the SQL version defined above.
    NULL;
END
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
    retryable   boolean := current_setting('transaction_isolation') <> 'read committed';
    modified    boolean;
    new_tables  jsonb[];
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
        ELSE
            -- Untouched tables are copied from the previous version as they are, touched ones described again:
            -- the work is proportional to the tables the statement touched (see compose_tables above). The previous
            -- version is read (decompressed) once, by compose_tables: every other look at it would read it again.
            -- Two statements: the call below is then a "simple expression" that PL/pgSQL evaluates without going
            -- through SPI, which would copy the multi-megabyte result into a tuple once more.
            new_tables := ARRAY(SELECT pgstream.describe_table(c.oid)
                                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                WHERE c.oid = ANY(live_tables) AND n.nspname = target);
            described := CASE WHEN previous.schema IS NULL THEN 'null'::jsonb
                              ELSE pgstream.compose_tables(previous.schema, changed_tables || removed_tables,
                                                           new_tables) END;
            modified := described IS NOT NULL;
            IF jsonb_typeof(described) = 'null' THEN
                -- The first version, or the first after a "dropped" marker: built from the catalogs in full.
                described := pgstream.get_schema(target);
                modified := previous.schema IS DISTINCT FROM described;
            END IF;
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

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (7, 'compose_schema_versions') ON CONFLICT (version) DO NOTHING;
