-- 0011: a smaller fixed cost per logged DDL (extension 0.5.0).
--
-- Profiled on a schema of 1,000 tables in delta mode (track_functions = all, pg_stat_statements.track = all; see
-- docs/schema-tracking.md#cost): of about 8 ms that logging added to each CREATE/ALTER TABLE, a quarter went to
-- statements that do nothing for the change itself:
--   * pgstream.is_skip_log() (0.4 ms): a SQL function with a SET clause is never inlined and is planned again at
--     each DDL, and it read pg_roles (a view over pg_authid) even when pgstream.skip_log was not set at all;
--   * pgstream.is_system_schema() (4 calls per DDL, 0.09 ms each): planned again at each DDL, as above;
--   * pgstream.xid() (0.25 ms, once per new id): pg_control_system() reads and checksums pg_control from disk for
--     the 24 machine bits, which never change while the server runs;
--   * log_schema_changes: a DELETE from table_ids with an empty array (0.3 ms) and one is_logged_table() call per
--     changed table (0.3 ms).
-- PL/pgSQL keeps its plans for the session, so the functions below are PL/pgSQL; their results are unchanged.

CREATE OR REPLACE FUNCTION pgstream.is_skip_log()
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lower(coalesce(current_setting('pgstream.skip_log', true), '')) NOT IN ('on', 'true', 'yes', '1') THEN
        RETURN false;
    END IF;
    -- Only a superuser may turn logging off (any role may set a custom setting).
    RETURN coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false);
END
$$;

CREATE OR REPLACE FUNCTION pgstream.is_system_schema(schema_name text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN schema_name IN ('pgstream', 'pg_catalog', 'information_schema', 'pg_toast', 'pg_temp')
        OR schema_name LIKE 'pg\_temp\_%'
        OR schema_name LIKE 'pg\_toast\_temp\_%';
END
$$;

-- The 24 machine bits of an id (the low bits of the cluster's system identifier), read from pg_control once per
-- session and kept in the session-local setting pgstream.xid_machine. A value that is not a number (a user may set
-- any custom setting) is read again; any number only changes the machine bits of the ids this session mints,
-- which stay unique by their time, process id and counter.
CREATE OR REPLACE FUNCTION pgstream.xid_machine()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cached  text := current_setting('pgstream.xid_machine', true);
    machine bigint;
BEGIN
    IF cached ~ '^[0-9]{1,8}$' THEN
        RETURN cached::bigint & 16777215;
    END IF;
    SELECT system_identifier & 16777215 INTO machine FROM pg_control_system();
    PERFORM set_config('pgstream.xid_machine', machine::text, false);
    RETURN machine;
END
$$;

CREATE OR REPLACE FUNCTION pgstream.xid(at timestamptz DEFAULT clock_timestamp())
RETURNS pgstream.xid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    alphabet constant text := '0123456789abcdefghijklmnopqrstuv';
    bits     bit(100);
    encoded  text := '';
BEGIN
    -- 96 payload bits plus 4 zero bits of padding make exactly 20 groups of 5 bits.
    bits := floor(extract(epoch FROM at))::bigint::bit(32)
            || pgstream.xid_machine()::bit(24)
            || pg_backend_pid()::bit(16)
            || nextval('pgstream.xid_counter')::bit(24)
            || B'0000';
    FOR i IN 0..19 LOOP
        encoded := encoded || substr(alphabet, substring(bits FROM i * 5 + 1 FOR 5)::integer + 1, 1);
    END LOOP;
    RETURN encoded;
END
$$;

-- log_schema_changes of 0009, with the live tables found in one query and no DELETE from table_ids when no table
-- was dropped.
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

    -- pgstream.is_logged_table() of each changed table, in one query.
    SELECT coalesce(array_agg(c.oid), '{}') INTO live_tables
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = ANY(changed_tables) AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
      AND NOT pgstream.is_system_schema(n.nspname);

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

    IF cardinality(removed_tables) > 0 THEN
        DELETE FROM pgstream.table_ids WHERE oid = ANY(removed_tables);
    END IF;
    RETURN written;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (11, 'fixed_cost_per_ddl') ON CONFLICT (version) DO NOTHING;
