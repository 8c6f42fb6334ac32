-- Schema tracking: the SQL API (pgstream.init, pgstream.tear_down) and DROP EXTENSION.
CREATE EXTENSION IF NOT EXISTS pgstream;
\set SHOW_CONTEXT never
\i regress/include/schema_helpers.sql
SELECT pgstream.default_slot_name();

-- init() checks the settings first and says exactly what to change
SET output_plugin_libraries = pgoutput, test_decoding;
SELECT pgstream.init(plugin => 'wal2json');
SET output_plugin_libraries = '';  -- no plugin at all
SELECT pgstream.init(slot_name => 'regress_pgstream_api', plugin => 'wal2json');
RESET output_plugin_libraries;
SELECT pgstream.check_settings('no_such_plugin');
-- every replication slot in use (filled up with physical slots, which cost nothing)
SELECT count(*) > 0 AS filled
FROM (SELECT pg_create_physical_replication_slot('regress_pgstream_fill_' || i)
      FROM generate_series(1, current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)) AS i) AS s;
SELECT pgstream.init(plugin => 'wal2json');
SELECT count(*) > 0 AS dropped FROM (SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                                 WHERE slot_name LIKE 'regress\_pgstream\_fill\_%') AS d;
SELECT count(*) AS slots_created FROM pg_replication_slots WHERE slot_name LIKE '%pgstream%api%' OR slot_name = pgstream.default_slot_name();

-- a schema whose tables exist before init() gets its first version from init(), after the slot exists, so that
-- the stream starts with it
SET pgstream.skip_log = on;
CREATE SCHEMA api;
CREATE TABLE api.existing (id int PRIMARY KEY, v text);
RESET pgstream.skip_log;
SELECT count(*) AS versions_before_init FROM pgstream.schema_log WHERE schema_name = 'api';

SELECT pgstream.init(slot_name => 'regress_pgstream_api', plugin => 'wal2json');
SELECT slot_name, plugin, slot_type, database = current_database() AS this_database
FROM pg_replication_slots WHERE slot_name = 'regress_pgstream_api';
SELECT * FROM pg_temp.show('api');
SELECT data::jsonb ->> 'table' AS streamed_table, data::jsonb -> 'columns' @> '[{"name": "schema_name", "value": "api"}]' AS api_version
FROM pg_logical_slot_peek_changes('regress_pgstream_api', NULL, NULL, 'format-version', '2', 'include-transaction', 'false')
WHERE data::jsonb ->> 'table' = 'schema_log_entries' AND data::jsonb -> 'columns' @> '[{"name": "schema_name", "value": "api"}]';

-- init() again: the existing slot is returned, nothing new is logged
SELECT pgstream.init(slot_name => 'regress_pgstream_api', plugin => 'wal2json');
SELECT * FROM pg_temp.versions() WHERE schema_name = 'api';
-- the same slot name with another plugin is refused
SELECT pgstream.init(slot_name => 'regress_pgstream_api', plugin => 'test_decoding');

-- tear_down() drops the slot and forgets every version and id; logging goes on afterwards
SELECT pgstream.tear_down(slot_name => 'regress_pgstream_api');
SELECT count(*) AS slots_left FROM pg_replication_slots WHERE slot_name = 'regress_pgstream_api';
SELECT (SELECT count(*) FROM pgstream.schema_log) AS versions_left, (SELECT count(*) FROM pgstream.table_ids) AS ids_left;
SELECT pgstream.tear_down(slot_name => 'regress_pgstream_api');
ALTER TABLE api.existing ADD COLUMN after_tear_down int;
SELECT * FROM pg_temp.show('api');

-- refresh_schema() logs a full rebuild only when it differs from the latest version
SELECT pgstream.refresh_schema('api') AS unchanged;
SET pgstream.skip_log = on;
ALTER TABLE api.existing ADD COLUMN while_skipped int;
RESET pgstream.skip_log;
SELECT pgstream.refresh_schema('api') AS repaired;
SELECT * FROM pg_temp.show('api');
SELECT pgstream.refresh_schema('pgstream');

-- the migrations are recorded
SELECT version, name FROM pgstream.migrations ORDER BY version;

-- DROP EXTENSION leaves nothing behind: no schema, no event trigger, no type, no function
SET client_min_messages = warning;
DROP SCHEMA api CASCADE;
DROP EXTENSION pgstream;
RESET client_min_messages;
SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream') AS schemas,
       (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pgstream%') AS event_triggers,
       (SELECT count(*) FROM pg_proc WHERE proname IN ('log_schema', 'init', 'tear_down', 'xid')
                                       AND pronamespace::regnamespace::text = 'pgstream') AS functions,
       (SELECT count(*) FROM pg_type WHERE typname = 'xid' AND typnamespace::regnamespace::text = 'pgstream') AS types;
-- and DDL works as before
CREATE TABLE after_drop_extension (a int);
DROP TABLE after_drop_extension;
