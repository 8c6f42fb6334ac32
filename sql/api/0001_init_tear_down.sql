-- SQL API of the extension: pgstream.init() and pgstream.tear_down().
-- They run with the caller's rights (creating a replication slot needs REPLICATION or superuser).

-- Default slot name of a database: pgstream_<database>_slot, each byte (of the UTF-8 name) that a slot name cannot
-- hold replaced by '_' (A-Z lower-cased). Past 63 bytes, where PostgreSQL would cut it and two databases could share
-- a slot: the first 49 bytes, '_', 8 hex digits of the 32-bit FNV-1a hash of the whole name, '_slot'. The shipper
-- computes the same name (default_slot_name_for_database in postgres_listener.cpp).
CREATE OR REPLACE FUNCTION pgstream.default_slot_name_for(database text)
RETURNS name
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bytes bytea := convert_to(database, 'UTF8');
    slot  text := 'pgstream_';
    b     integer;
    hash  bigint := 2166136261;
BEGIN
    FOR i IN 0 .. length(bytes) - 1 LOOP
        b := get_byte(bytes, i);
        slot := slot || CASE WHEN b BETWEEN 65 AND 90 THEN chr(b + 32)
                             WHEN b BETWEEN 97 AND 122 OR b BETWEEN 48 AND 57 OR b = 95 THEN chr(b)
                             ELSE '_' END;
        hash := ((hash # b) * 16777619) % 4294967296;
    END LOOP;
    slot := slot || '_slot';
    IF length(slot) <= 63 THEN
        RETURN slot;
    END IF;
    RETURN (left(slot, 49) || '_' || lpad(to_hex(hash), 8, '0') || '_slot')::name;
END
$$;

CREATE OR REPLACE FUNCTION pgstream.default_slot_name()
RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pgstream.default_slot_name_for(current_database())
$$;

-- Checks that logical decoding through `plugin` can work on this server and says exactly what to change if not.
-- Returns nothing when all is well.
CREATE OR REPLACE FUNCTION pgstream.check_settings(plugin text DEFAULT 'pgstream')
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    allowed      text := current_setting('output_plugin_libraries', true);
    max_slots    integer := current_setting('max_replication_slots')::integer;
    used_slots   integer;
    max_senders  integer := current_setting('max_wal_senders')::integer;
    allowed_names text[];
BEGIN
    IF current_setting('wal_level') <> 'logical' THEN
        RAISE EXCEPTION 'pgstream: wal_level is "%", logical decoding needs wal_level = logical', current_setting('wal_level')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL.';
    END IF;
    -- PostgreSQL 15.19+ refuses output plugins that output_plugin_libraries does not list (the setting does not exist
    -- on older servers, which accept any plugin). The list holds comma-separated names, optionally double-quoted.
    IF allowed IS NOT NULL THEN
        SELECT coalesce(array_agg(name), '{}') INTO allowed_names
        FROM (SELECT btrim(btrim(entry), '"') AS name FROM regexp_split_to_table(allowed, ',') AS entry) AS entries
        WHERE name <> '';
        IF NOT plugin = ANY(allowed_names) THEN
            RAISE EXCEPTION 'pgstream: output plugin "%" is not listed in output_plugin_libraries (currently ''%'')',
                            plugin, array_to_string(allowed_names, ', ')
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('Add %s to output_plugin_libraries in postgresql.conf (ALTER SYSTEM SET output_plugin_libraries = %L; SELECT pg_reload_conf()).',
                                    plugin, array_to_string(allowed_names || plugin, ', '));
        END IF;
    END IF;
    SELECT count(*) INTO used_slots FROM pg_replication_slots;
    IF used_slots >= max_slots THEN
        RAISE EXCEPTION 'pgstream: all % replication slots are in use (max_replication_slots = %)', used_slots, max_slots
            USING ERRCODE = 'configuration_limit_exceeded',
                  HINT = 'Drop an unused slot with SELECT pg_drop_replication_slot(''name''), or raise max_replication_slots (ALTER SYSTEM SET max_replication_slots = ...) and restart PostgreSQL.';
    END IF;
    IF max_senders = 0 THEN
        RAISE EXCEPTION 'pgstream: max_wal_senders is 0, so no replication connection can stream the slot'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run ALTER SYSTEM SET max_wal_senders = 10; then restart PostgreSQL.';
    END IF;
END
$$;

-- Creates the logical replication slot the shipper streams from and returns its name. If the slot already exists
-- for this database and plugin, returns it unchanged. With log_existing_schemas, every user schema that has no
-- up-to-date version yet gets one, written after the slot exists so that it is the first thing the stream carries.
CREATE OR REPLACE FUNCTION pgstream.init(
    slot_name            name    DEFAULT NULL,
    plugin               text    DEFAULT 'pgstream',
    log_existing_schemas boolean DEFAULT true)
RETURNS name
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    slot     name := coalesce(init.slot_name, pgstream.default_slot_name());
    existing record;
    s        name;
BEGIN
    SELECT r.plugin, r.database, r.slot_type INTO existing FROM pg_replication_slots r WHERE r.slot_name = slot;
    IF FOUND THEN
        IF existing.slot_type <> 'logical' OR existing.database IS DISTINCT FROM current_database()
           OR existing.plugin IS DISTINCT FROM init.plugin THEN
            RAISE EXCEPTION 'pgstream.init: replication slot "%" already exists for % slot, database %, plugin %',
                slot, existing.slot_type, coalesce(existing.database, '(none)'), coalesce(existing.plugin, '(none)')
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Pass another slot_name, or drop the slot with SELECT pg_drop_replication_slot(''' || slot || ''').';
        END IF;
        RAISE NOTICE 'pgstream.init: replication slot "%" already exists', slot;
    ELSE
        PERFORM pgstream.check_settings(init.plugin);
        PERFORM pg_create_logical_replication_slot(slot, init.plugin);
    END IF;

    IF log_existing_schemas THEN
        FOR s IN SELECT n.nspname FROM pg_namespace n WHERE NOT pgstream.is_system_schema(n.nspname) ORDER BY 1 LOOP
            PERFORM pgstream.refresh_schema(s);
        END LOOP;
    END IF;
    RETURN slot;
END
$$;

-- Drops the slot and forgets every logged schema version and table id. The event triggers stay (they belong to the
-- extension: DROP EXTENSION pgstream removes them and everything else).
CREATE OR REPLACE FUNCTION pgstream.tear_down(slot_name name DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    slot name := coalesce(tear_down.slot_name, pgstream.default_slot_name());
    existing record;
BEGIN
    SELECT r.plugin, r.database, r.slot_type INTO existing FROM pg_replication_slots r WHERE r.slot_name = slot;
    IF FOUND THEN
        -- Only a slot of this database and of a plugin pgstream streams from is ours to drop.
        IF existing.slot_type <> 'logical' OR existing.database IS DISTINCT FROM current_database()
           OR existing.plugin NOT IN ('pgstream', 'wal2json') THEN
            RAISE EXCEPTION 'pgstream.tear_down: replication slot "%" is not this database''s pgstream slot (% slot, database %, plugin %)',
                slot, existing.slot_type, coalesce(existing.database, '(none)'), coalesce(existing.plugin, '(none)')
                USING ERRCODE = 'object_in_use',
                      HINT = 'Pass the slot_name that pgstream.init() returned in this database.';
        END IF;
        PERFORM pg_drop_replication_slot(slot);
    ELSE
        RAISE NOTICE 'pgstream.tear_down: replication slot "%" does not exist', slot;
    END IF;
    -- The versions' table: pgstream.schema_log_entries since 0012 (schema_log is a view over it).
    IF to_regclass('pgstream.schema_log_entries') IS NOT NULL THEN
        TRUNCATE pgstream.schema_log_entries, pgstream.table_ids;
    ELSE
        TRUNCATE pgstream.schema_log, pgstream.table_ids;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION pgstream.default_slot_name(), pgstream.default_slot_name_for(text), pgstream.check_settings(text), pgstream.init(name, text, boolean),
    pgstream.tear_down(name) FROM PUBLIC;
