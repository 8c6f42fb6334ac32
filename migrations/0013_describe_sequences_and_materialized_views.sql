-- 0013: sequences and materialized views in the schema versions (issue 15, item 3; extension 0.5.0).
--
-- Users asked the Go pgstream to track these. A version's document gains two arrays next to "tables" (new keys:
-- readers that ignore unknown members read it as before), in name order (COLLATE "C") like the tables:
--   "sequences":          [{"oid", "name", "data_type", "start", "increment", "min", "max", "cache", "cycle",
--                           "owned_by": {"table" (schema-qualified), "column", "identity"} or null}]
--                         Not the current value: it changes without DDL (nextval), so describing it would need a
--                         version per nextval; a consumer recreating the sequence sets it from the data it copied.
--   "materialized_views": [{"oid", "name", "columns": [{"name", "type", "nullable"}], "definition"}]
--                         "definition" is pg_get_viewdef's query (consumers may ignore it). REFRESH changes no
--                         member and logs no version.
-- A delta version (0009/0012) carries the changed ones as "changed_sequences" and "changed_materialized_views"
-- (present only when some changed) and their oids in "delta"."removed" like the tables'. They are kept with the
-- tables in pgstream.schema_tables (new column "kind": the document's array). A sequence is described again when
-- the table that owns it changes (its owner is named by table and column), and is removed when ALTER TABLE drops its
-- column or identity. Documents written before 0013 have no "sequences": the next DDL of such a schema writes a
-- whole document, built from the catalogs, once.

CREATE OR REPLACE FUNCTION pgstream.describe_sequence(seq oid)
RETURNS jsonb
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
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
    WHERE c.oid = seq AND c.relkind = 'S'
$$;

CREATE OR REPLACE FUNCTION pgstream.describe_materialized_view(view oid)
RETURNS jsonb
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
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
    WHERE c.oid = view AND c.relkind = 'm'
$$;

-- {"kind": the document's array the object goes in, "description"} of a table, sequence or materialized view;
-- NULL for other relations.
CREATE OR REPLACE FUNCTION pgstream.describe_relation(rel oid)
RETURNS jsonb
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE c.relkind
               WHEN 'S' THEN jsonb_build_object('kind', 'sequences', 'description', pgstream.describe_sequence(c.oid))
               WHEN 'm' THEN jsonb_build_object('kind', 'materialized_views',
                                                'description', pgstream.describe_materialized_view(c.oid))
               WHEN 'r' THEN jsonb_build_object('kind', 'tables', 'description', pgstream.describe_table(c.oid))
               WHEN 'p' THEN jsonb_build_object('kind', 'tables', 'description', pgstream.describe_table(c.oid))
           END
    FROM pg_class c WHERE c.oid = rel
$$;

-- The sequences and materialized views of a schema, as get_schema() adds them to the tables.
CREATE OR REPLACE FUNCTION pgstream.describe_other_objects(schema_name text)
RETURNS jsonb
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'sequences', (SELECT coalesce(jsonb_agg(pgstream.describe_sequence(c.oid) ORDER BY c.relname), '[]'::jsonb)
                      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = describe_other_objects.schema_name AND c.relkind = 'S'
                        AND c.relpersistence <> 't'),
        'materialized_views', (SELECT coalesce(jsonb_agg(pgstream.describe_materialized_view(c.oid) ORDER BY c.relname),
                                               '[]'::jsonb)
                               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                               WHERE n.nspname = describe_other_objects.schema_name AND c.relkind = 'm'))
$$;

-- get_schema of 0003 with the sequences and materialized views.
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

    RETURN jsonb_build_object('tables', described) || pgstream.describe_other_objects(schema_name);
END
$$;

-- Full mode: `document` with its sequences and materialized views that `touched` names replaced by the ones in
-- `described` (describe_relation() results; gone when absent), and the ones that no longer exist removed, in name
-- order (O(sequences + materialized views) of the schema, like full mode's whole document).
CREATE OR REPLACE FUNCTION pgstream.compose_other_objects(document jsonb, touched oid[], described jsonb[])
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT document || jsonb_object_agg(kinds.kind, (
               SELECT coalesce(jsonb_agg(o ORDER BY (o ->> 'name') COLLATE "C"), '[]'::jsonb)
               FROM (SELECT o FROM jsonb_array_elements(CASE WHEN jsonb_typeof(document -> kinds.kind) = 'array'
                                                              THEN document -> kinds.kind ELSE '[]' END) AS o
                     WHERE NOT (o ->> 'oid')::oid = ANY(coalesce(touched, '{}'))
                       -- ALTER TABLE ... DROP IDENTITY drops a sequence without naming it anywhere.
                       AND EXISTS (SELECT FROM pg_class c WHERE c.oid = (o ->> 'oid')::oid)
                     UNION ALL
                     SELECT d -> 'description' FROM unnest(described) AS d
                     WHERE d ->> 'kind' = kinds.kind AND jsonb_typeof(d -> 'description') = 'object') AS merged(o)))
    FROM (VALUES ('sequences'), ('materialized_views')) AS kinds(kind)
$$;

-- The cached current descriptions (0009) keep sequences and materialized views with the tables; "kind" is the
-- document's array each one goes in.
ALTER TABLE pgstream.schema_tables ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'tables';
-- The table that owns a cached sequence: ALTER TABLE ... DROP IDENTITY drops the sequence without a sql_drop event,
-- so the sequences a changed table owned are found here (an index lookup, not a pass over the schema's sequences).
ALTER TABLE pgstream.schema_tables ADD COLUMN IF NOT EXISTS owner oid;
CREATE INDEX IF NOT EXISTS schema_tables_owner ON pgstream.schema_tables (owner) WHERE owner IS NOT NULL;

-- The table that owns sequence `seq` (serial, identity, OWNED BY), NULL if none.
CREATE OR REPLACE FUNCTION pgstream.sequence_owner(seq oid)
RETURNS oid
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.refobjid FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.objid = seq AND d.refclassid = 'pg_class'::regclass
      AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
    LIMIT 1
$$;
-- The cache holds no sequences yet: every schema reloads it (and writes a whole document) at its next DDL.
DELETE FROM pgstream.schema_tables_synced;

-- The whole document of a schema from its cached current descriptions.
CREATE OR REPLACE FUNCTION pgstream.document_from_schema_tables(target text)
RETURNS jsonb
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_object_agg(kinds.kind, (
               SELECT coalesce(jsonb_agg(st.description ORDER BY (st.description ->> 'name') COLLATE "C"), '[]'::jsonb)
               FROM pgstream.schema_tables st WHERE st.schema_name = target AND st.kind = kinds.kind))
    FROM (VALUES ('tables'), ('sequences'), ('materialized_views')) AS kinds(kind)
$$;

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
    VALUES (target, version_id, pg_column_size(document), 0)
    ON CONFLICT (schema_name) DO UPDATE
    SET version_id = excluded.version_id, full_bytes = excluded.full_bytes, delta_bytes = 0;
$$;

-- latest_tables of 0012: the tables only.
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
                     WHERE st.schema_name = latest_tables.schema_name AND st.kind = 'tables';
        RETURN;
    END IF;
    document := pgstream.schema_at(schema_name, latest.version);
    IF jsonb_typeof(document -> 'tables') = 'array' THEN
        RETURN QUERY SELECT t FROM jsonb_array_elements(document -> 'tables') AS t;
    END IF;
END
$$;

-- The view of 0012, composing the sequences and materialized views too ("changed_<kind>" members of the deltas).
-- A version whose base was written before 0013 (no "sequences") is shown as before, without them.
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
           ), kinds(kind, changed_member) AS (
               VALUES ('tables', 'changed'), ('sequences', 'changed_sequences'),
                      ('materialized_views', 'changed_materialized_views')
           ), described AS (
               SELECT kinds.kind, t AS description, base.version
               FROM base, kinds, jsonb_array_elements(CASE WHEN jsonb_typeof(base.schema -> kinds.kind) = 'array'
                                                           THEN base.schema -> kinds.kind ELSE '[]' END) AS t
               UNION ALL
               SELECT kinds.kind, c, deltas.version
               FROM deltas, kinds,
                    jsonb_array_elements(CASE WHEN jsonb_typeof(deltas.schema -> kinds.changed_member) = 'array'
                                              THEN deltas.schema -> kinds.changed_member ELSE '[]' END) AS c
               UNION ALL
               SELECT NULL, jsonb_build_object('oid', r #>> '{}', 'removed', true), deltas.version
               FROM deltas, jsonb_array_elements(deltas.schema -> 'delta' -> 'removed') AS r
           ), current AS (
               SELECT DISTINCT ON (description ->> 'oid') kind, description
               FROM described ORDER BY description ->> 'oid', version DESC
           )
           SELECT jsonb_build_object('tables',
                      coalesce(jsonb_agg(description ORDER BY (description ->> 'name') COLLATE "C")
                                   FILTER (WHERE kind = 'tables'), '[]'::jsonb))
                  || CASE WHEN (SELECT base.schema ? 'sequences' FROM base) THEN jsonb_build_object(
                         'sequences',
                         coalesce(jsonb_agg(description ORDER BY (description ->> 'name') COLLATE "C")
                                      FILTER (WHERE kind = 'sequences'), '[]'::jsonb),
                         'materialized_views',
                         coalesce(jsonb_agg(description ORDER BY (description ->> 'name') COLLATE "C")
                                      FILTER (WHERE kind = 'materialized_views'), '[]'::jsonb))
                     ELSE '{}'::jsonb END
           FROM current)
       ELSE e.schema END AS schema,
       e.created_at, e.acked, e.wal_position
FROM pgstream.schema_log_entries e;

-- log_schema_changes of 0012 describing sequences and materialized views too (see above).
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
    SELECT coalesce(array_agg(c.oid), '{}') INTO live_objects
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = ANY(changed_tables) AND c.relkind IN ('S', 'm') AND c.relpersistence <> 't'
      AND NOT pgstream.is_system_schema(n.nspname);
    live_objects := live_tables || live_objects;

    -- Every schema a table is in now or was last logged in (SET SCHEMA and schema renames leave one behind).
    SELECT coalesce(array_agg(DISTINCT name ORDER BY name), '{}') INTO schemas
    FROM (
        SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY(live_objects)
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
    END IF;
    RETURN written;
END
$$;

-- log_schema of 0009 reporting sequences and materialized views (created, altered, dropped) too.
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
            -- tables, sequences, materialized views (0013), and the tables of indexes
            SELECT CASE WHEN r.relkind IN ('i', 'I') THEN i.indrelid ELSE r.oid END
            FROM cmd
            JOIN pg_class r ON r.oid = cmd.objid
            LEFT JOIN pg_index i ON i.indexrelid = r.oid
            WHERE cmd.classid = 'pg_class'::regclass AND r.relkind IN ('r', 'p', 'i', 'I', 'S', 'm')
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
        -- ALTER TABLE ... DROP COLUMN/CONSTRAINT and the like are logged by their own ddl_command_end; the sequence
        -- of a serial or identity column they drop (ALTER TABLE ... DROP COLUMN, DROP IDENTITY) is removed here.
        IF TG_TAG NOT LIKE 'DROP %' THEN
            SELECT coalesce(array_agg(o.objid), '{}'), coalesce(array_agg(DISTINCT o.schema_name), '{}')
            INTO removed, touched
            FROM pg_event_trigger_dropped_objects() o
            WHERE o.object_type = 'sequence' AND NOT o.is_temporary
              AND NOT coalesce(pgstream.is_system_schema(o.schema_name), false);
            IF cardinality(removed) > 0 THEN
                PERFORM pgstream.log_schema_changes('{}', removed, touched, '{}');
            END IF;
            RETURN;
        END IF;

        WITH d AS (
            SELECT * FROM pg_event_trigger_dropped_objects() o
            WHERE NOT o.is_temporary AND NOT coalesce(pgstream.is_system_schema(o.schema_name), false)
        )
        SELECT coalesce(array_agg(d.objid) FILTER (WHERE d.object_type IN ('table', 'sequence', 'materialized view')),
                        '{}'),
               coalesce(array_agg(DISTINCT d.schema_name)
                            FILTER (WHERE d.object_type IN ('table', 'index', 'sequence', 'materialized view')), '{}'),
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

INSERT INTO pgstream.migrations (version, name) VALUES (13, 'sequences_and_materialized_views')
ON CONFLICT (version) DO NOTHING;
