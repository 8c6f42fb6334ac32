-- Schema tracking: every version records where in the WAL it was written (schema_log.wal_position, taken inside the
-- DDL's transaction). The version in force for a row change at LSN L is the newest one written before L: what the
-- shipper uses, wherever its stream starts.
CREATE EXTENSION IF NOT EXISTS pgstream;
\set SHOW_CONTEXT never
CREATE SCHEMA pos;
CREATE TABLE pos.t (id int PRIMARY KEY, a text);
SELECT 'created' FROM pg_create_logical_replication_slot('pos_slot', 'test_decoding');
INSERT INTO pos.t VALUES (1, 'before the DDL');
ALTER TABLE pos.t RENAME COLUMN a TO b;
ALTER TABLE pos.t ADD COLUMN a text;
INSERT INTO pos.t VALUES (2, 'after the DDL', 'new a');
-- DDL inside a transaction that also writes rows: rows before it are below its position, rows after above
BEGIN;
INSERT INTO pos.t VALUES (3, 'same transaction, before');
ALTER TABLE pos.t ADD COLUMN c int;
INSERT INTO pos.t VALUES (4, 'same transaction, after', NULL, 4);
COMMIT;

SELECT version, wal_position IS NOT NULL AS positioned,
       (SELECT string_agg(c ->> 'name', ', ') FROM jsonb_array_elements(schema -> 'tables' -> 0 -> 'columns') AS c) AS columns
FROM pgstream.schema_log WHERE schema_name = 'pos' ORDER BY version;
-- positions grow with versions
SELECT bool_and(wal_position > previous) AS increasing
FROM (SELECT wal_position, lag(wal_position) OVER (ORDER BY version) AS previous
      FROM pgstream.schema_log WHERE schema_name = 'pos') AS v WHERE previous IS NOT NULL;

-- each row change and the version in force at its LSN
SELECT (regexp_match(c.data, 'id\[integer\]:(\d+)'))[1] AS row_id, v.version,
       (SELECT string_agg(col ->> 'name', ', ') FROM jsonb_array_elements(v.schema -> 'tables' -> 0 -> 'columns') AS col) AS columns
FROM pg_logical_slot_peek_changes('pos_slot', NULL, NULL) AS c
CROSS JOIN LATERAL (SELECT l.version, l.schema FROM pgstream.schema_log l
                    WHERE l.schema_name = 'pos' AND l.wal_position < c.lsn ORDER BY l.version DESC LIMIT 1) AS v
WHERE c.data LIKE 'table pos.t: INSERT:%' ORDER BY c.lsn;
SELECT 'dropped' FROM pg_drop_replication_slot('pos_slot');

DROP SCHEMA pos CASCADE;
DROP EXTENSION pgstream;

-- upgrading from 0.1.0: versions logged before the upgrade keep a NULL position (older than every positioned one)
CREATE EXTENSION pgstream VERSION '0.1.0';
CREATE SCHEMA up;
CREATE TABLE up.t (id int PRIMARY KEY);
ALTER EXTENSION pgstream UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'pgstream';
ALTER TABLE up.t ADD COLUMN a text;
SELECT version, wal_position IS NOT NULL AS positioned FROM pgstream.schema_log WHERE schema_name = 'up' ORDER BY version;
SELECT version, name FROM pgstream.migrations WHERE version >= 5 ORDER BY version;
DROP SCHEMA up CASCADE;
DROP EXTENSION pgstream;

-- upgrading from 0.4.0 (0.5.0: migration 0011, a smaller fixed cost per DDL): delta versions continue from the
-- ones logged before the update, every version still equals a full rebuild, and ids keep their form
CREATE EXTENSION pgstream VERSION '0.4.0';
SET pgstream.schema_versions = delta;
CREATE SCHEMA up4;
CREATE TABLE up4.t (id int PRIMARY KEY);
ALTER TABLE up4.t ADD COLUMN a text;
CREATE ROLE regress_pgstream_up4_reader NOLOGIN;
GRANT SELECT, UPDATE (acked) ON pgstream.schema_log TO regress_pgstream_up4_reader;
ALTER EXTENSION pgstream UPDATE;
-- the shipper's grants move to the view that now carries the name
SELECT has_table_privilege('regress_pgstream_up4_reader', 'pgstream.schema_log', 'SELECT') AS can_select,
       has_column_privilege('regress_pgstream_up4_reader', 'pgstream.schema_log', 'acked', 'UPDATE') AS can_ack,
       has_column_privilege('regress_pgstream_up4_reader', 'pgstream.schema_log', 'schema', 'UPDATE') AS can_rewrite,
       (SELECT relkind FROM pg_class WHERE oid = 'pgstream.schema_log'::regclass) AS kind;
SELECT extversion FROM pg_extension WHERE extname = 'pgstream';
ALTER TABLE up4.t ADD COLUMN b text;
CREATE TABLE up4.u (id int);
DROP TABLE up4.u;
-- what was written (the table since 0.5.0): deltas before and after the update; the first DDL after it writes a
-- whole document (0013: the cached descriptions had no sequences)
SELECT version, schema ? 'delta' AS delta FROM pgstream.schema_log_entries WHERE schema_name = 'up4' ORDER BY version;
SELECT pgstream.schema_at('up4', max(version)) = pgstream.get_schema('up4') AS latest_equals_full_rebuild
FROM pgstream.schema_log WHERE schema_name = 'up4';
SELECT count(*) FILTER (WHERE id::text !~ '^[0-9a-v]{20}$') AS malformed_ids, count(DISTINCT id) = count(*) AS unique_ids
FROM pgstream.schema_log;
SELECT version, name FROM pgstream.migrations WHERE version >= 10 ORDER BY version;
RESET pgstream.schema_versions;
DROP SCHEMA up4 CASCADE;
DROP EXTENSION pgstream;
DROP ROLE regress_pgstream_up4_reader;

-- default slot names: past 63 bytes the name keeps a hash of the whole database name, so two long names that share
-- their first 63 bytes get two slots (the shipper computes the same names: integration_slot_names_test.cpp)
CREATE EXTENSION pgstream;
SELECT pgstream.default_slot_name_for('Shop-DB') AS short_name,
       pgstream.default_slot_name_for(repeat('x', 60) || '_one') AS long_one,
       pgstream.default_slot_name_for(repeat('x', 60) || '_two') AS long_two,
       length(pgstream.default_slot_name_for(repeat('é', 40))) AS long_non_ascii_bytes;
-- tear_down drops only this database's pgstream slot
SELECT 'created' FROM pg_create_logical_replication_slot('not_ours', 'test_decoding');
SELECT pgstream.tear_down('not_ours');
SELECT count(*) AS kept FROM pg_replication_slots WHERE slot_name = 'not_ours';
SELECT 'dropped' FROM pg_drop_replication_slot('not_ours');
DROP EXTENSION pgstream;
