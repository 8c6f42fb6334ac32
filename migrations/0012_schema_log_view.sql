-- 0012: pgstream.schema_log is a view that shows every version as the whole schema; versions are stored, and
-- travel through the WAL, as deltas by default (extension 0.5.0).
--
-- Before, every version in the default mode repeated the whole schema: at 5,000 tables each DDL decompressed,
-- copied, compressed and wrote ~500 kB of WAL (20x a plain DDL), and the decoder and the shipper parsed 5 MB. Delta
-- versions (0009) fixed the cost but changed what readers of schema_log saw. Now:
--   * pgstream.schema_log_entries is the table (the former schema_log, renamed: same columns, ids, indexes and
--     grants). Its rows are what the WAL and the stream carry: with pgstream.schema_versions = delta (now the
--     default) a version is the delta of 0009 ({"delta": {"base_version", "removed"}, "changed": [...]}); with
--     pgstream.schema_versions = full it is the whole document, as before.
--   * pgstream.schema_log is a view over it with the same columns, in the same order, whose "schema" is always the
--     whole document in the reference's format: a delta row is composed (the newest whole document before it plus
--     the deltas up to it). It is automatically updatable, so UPDATE pgstream.schema_log SET acked = true (and
--     DELETE) work as on the table; the composition is a subquery of the view, evaluated only when "schema" is
--     read, with the view owner's rights (GRANT SELECT, UPDATE (acked) ON pgstream.schema_log is all a reader
--     needs, as before).
--   * Composition cost is bounded: a delta version is written as a whole document instead when the deltas since
--     the last whole document would outgrow it (schema_tables_synced.delta_bytes vs full_bytes), so reading any
--     version reads at most about twice the document, and a DDL writes on average at most about twice its delta.

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'pgstream' AND c.relname = 'schema_log' AND c.relkind = 'r') THEN
        ALTER TABLE pgstream.schema_log RENAME TO schema_log_entries;
    END IF;
END
$$;

-- The whole document of every version; see above. A delta's base is the newest whole document before it (the first
-- version of a schema, the first after a drop and refresh_schema() are whole documents). For each table oid the
-- newest description or removal wins; tables in name order (COLLATE "C") as get_schema() orders them.
CREATE OR REPLACE VIEW pgstream.schema_log AS
SELECT e.id, e.version, e.schema_name,
       CASE WHEN e.schema ? 'delta' THEN (
           WITH base AS (
               SELECT b.version, b.schema FROM pgstream.schema_log_entries b
               WHERE b.schema_name = e.schema_name AND b.version < e.version AND NOT b.schema ? 'delta'
               ORDER BY b.version DESC LIMIT 1
           ), deltas AS (
               SELECT d.version, d.schema FROM pgstream.schema_log_entries d, base
               WHERE d.schema_name = e.schema_name AND d.version > base.version AND d.version <= e.version
           ), described AS (
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
               FROM described ORDER BY description ->> 'oid', version DESC
           )
           SELECT jsonb_build_object('tables',
                      coalesce(jsonb_agg(description ORDER BY (description ->> 'name') COLLATE "C")
                                   FILTER (WHERE NOT description ? 'removed'), '[]'::jsonb))
           FROM current)
       ELSE e.schema END AS schema,
       e.created_at, e.acked, e.wal_position
FROM pgstream.schema_log_entries e;

-- Kept for the readers of 0.4.0's delta mode: schema_log itself is the whole document now.
CREATE OR REPLACE VIEW pgstream.schema_log_full AS
SELECT l.id, l.version, l.schema_name, l.schema, l.created_at, l.acked, l.wal_position FROM pgstream.schema_log l;

-- The view takes the table's grants (the shipper's SELECT and UPDATE (acked)); PUBLIC has none.
DO $$
DECLARE
    granted record;
BEGIN
    FOR granted IN
        SELECT a.grantee::regrole::text AS grantee, a.privilege_type
        FROM pg_class c, aclexplode(c.relacl) AS a
        WHERE c.oid = 'pgstream.schema_log_entries'::regclass AND a.grantee <> 0 AND a.grantee <> c.relowner
          AND a.privilege_type IN ('SELECT', 'UPDATE', 'DELETE')
    LOOP
        EXECUTE format('GRANT %s ON pgstream.schema_log TO %s', granted.privilege_type, granted.grantee);
    END LOOP;
    FOR granted IN
        SELECT att.attname, a.grantee::regrole::text AS grantee, a.privilege_type
        FROM pg_attribute att, aclexplode(att.attacl) AS a
        WHERE att.attrelid = 'pgstream.schema_log_entries'::regclass AND att.attacl IS NOT NULL AND a.grantee <> 0
          AND a.privilege_type IN ('SELECT', 'UPDATE') AND NOT att.attisdropped
    LOOP
        EXECUTE format('GRANT %s (%I) ON pgstream.schema_log TO %s', granted.privilege_type, granted.attname,
                       granted.grantee);
    END LOOP;
END
$$;

-- The current descriptions (0009) are a cache of the latest version, rebuilt from the composed document whenever
-- schema_tables_synced does not name the latest version: unlogged, they cost no WAL and no decoding (a delta's
-- WAL was twice the delta with them), and after a crash or on a promoted standby, where unlogged tables are empty,
-- the next DDL of each schema reloads them once.
ALTER TABLE pgstream.schema_tables SET UNLOGGED;
ALTER TABLE pgstream.schema_tables_synced SET UNLOGGED;

-- Sizes (pg_column_size, uncompressed jsonb) of the schema's last whole document and of the deltas written since.
ALTER TABLE pgstream.schema_tables_synced ADD COLUMN IF NOT EXISTS full_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE pgstream.schema_tables_synced ADD COLUMN IF NOT EXISTS delta_bytes bigint NOT NULL DEFAULT 0;

-- 'delta' unless pgstream.schema_versions says 'full'; an unknown value is an error (the DDL fails and says why).
CREATE OR REPLACE FUNCTION pgstream.delta_versions()
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    mode text := lower(coalesce(nullif(current_setting('pgstream.schema_versions', true), ''), 'delta'));
BEGIN
    IF mode NOT IN ('full', 'delta') THEN
        RAISE EXCEPTION 'pgstream.schema_versions must be full or delta, not "%"', mode
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN mode = 'delta';
END
$$;

-- The whole document of version `version` of a schema (NULL when it does not exist): the view's composition.
CREATE OR REPLACE FUNCTION pgstream.schema_at(schema_name text, version bigint)
RETURNS jsonb
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.schema FROM pgstream.schema_log l
    WHERE l.schema_name = schema_at.schema_name AND l.version = schema_at.version
$$;

-- Makes schema_tables reflect the schema's version `version_id`, the whole document `document`.
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
    INSERT INTO pgstream.schema_tables_synced (schema_name, version_id, full_bytes, delta_bytes)
    VALUES (target, version_id, pg_column_size(document), 0)
    ON CONFLICT (schema_name) DO UPDATE
    SET version_id = excluded.version_id, full_bytes = excluded.full_bytes, delta_bytes = 0;
$$;

-- The tables of a schema's latest version: from schema_tables when they reflect it (no document read), else from
-- the whole document.
CREATE OR REPLACE FUNCTION pgstream.latest_tables(schema_name text)
RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    latest   record;
    document jsonb;
BEGIN
    SELECT l.version, l.id INTO latest FROM pgstream.schema_log_entries l
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

-- Inserts version `version` of a schema (see 0009: under REPEATABLE READ/SERIALIZABLE a concurrent newer version
-- is a serialization failure). Returns the new version's id.
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
            INSERT INTO pgstream.schema_log_entries (version, schema_name, schema)
            VALUES (insert_version.version, target, document) RETURNING id INTO new_id;
        EXCEPTION WHEN unique_violation THEN
            RAISE EXCEPTION 'pgstream: a concurrent transaction logged a newer version of schema "%"', target
                USING ERRCODE = 'serialization_failure',
                      HINT = 'Retry the transaction; DDL on one schema is logged in commit order.';
        END;
    ELSE
        INSERT INTO pgstream.schema_log_entries (version, schema_name, schema)
        VALUES (insert_version.version, target, document) RETURNING id INTO new_id;
    END IF;
    RETURN new_id;
END
$$;

-- refresh_schema of 0004, writing to the table (a whole document, compared with the latest whole document).
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
        INSERT INTO pgstream.schema_log_entries (version, schema_name, schema)
        SELECT coalesce((SELECT version FROM latest), 0) + 1, refresh_schema.schema_name, rebuilt.schema
        FROM rebuilt
        WHERE rebuilt.schema IS DISTINCT FROM (SELECT schema FROM latest)
        RETURNING 1
    )
    SELECT count(*) INTO written FROM inserted;
    RETURN written;
END
$$;

-- log_schema_changes of 0011 writing to the table, with delta versions the default and the whole-document rule
-- above, and two lookups that scanned O(tables) rows per DDL made index lookups.
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
        -- One ANY, so that table_ids' index on oid serves it (an OR of two scanned every table's row).
        SELECT t.schema_name FROM pgstream.table_ids t
        WHERE t.oid = ANY(changed_tables || removed_tables)
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

        new_tables := ARRAY(SELECT pgstream.describe_table(c.oid)
                            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE c.oid = ANY(live_tables) AND n.nspname = target);

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
        FROM pgstream.schema_log_entries l WHERE l.schema_name = target ORDER BY l.version DESC LIMIT 1;
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

        -- The current descriptions after this version.
        -- By oid, so that the primary key serves it (oid::text scanned every description of the schema).
        DELETE FROM pgstream.schema_tables st
        WHERE st.schema_name = target
          AND st.oid = ANY(ARRAY(SELECT r::oid FROM jsonb_array_elements_text(removed) AS r));
        INSERT INTO pgstream.schema_tables (schema_name, oid, description)
        SELECT target, (d ->> 'oid')::oid, d FROM jsonb_array_elements(changed) AS d
        ON CONFLICT (schema_name, oid) DO UPDATE SET description = excluded.description;

        described := jsonb_build_object('delta', jsonb_build_object('base_version', previous.version,
                                                                    'removed', removed),
                                        'changed', changed);
        SELECT s.full_bytes, s.delta_bytes INTO sizes FROM pgstream.schema_tables_synced s WHERE s.schema_name = target;
        IF sizes.delta_bytes + pg_column_size(described) > greatest(sizes.full_bytes, 65536) THEN
            -- The deltas since the last whole document would outgrow it (and 64 kB): this version is the whole
            -- document, built from the current descriptions (O(tables), once per that many bytes of deltas), so
            -- that composing any version reads at most about twice the document.
            SELECT jsonb_build_object('tables', coalesce(jsonb_agg(st.description
                                                                    ORDER BY (st.description ->> 'name') COLLATE "C"),
                                                         '[]'::jsonb))
            INTO described
            FROM pgstream.schema_tables st WHERE st.schema_name = target;
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
    END IF;
    RETURN written;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgstream FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (12, 'schema_log_view') ON CONFLICT (version) DO NOTHING;
