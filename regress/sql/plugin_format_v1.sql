-- format-version 1: one document per transaction, identity rules, TRUNCATE, messages, per-column options and value rendering.
\set VERBOSITY terse
SET synchronous_commit = on;
SET extra_float_digits = 0;

CREATE TABLE plugin_v1_types (id int PRIMARY KEY, i2 int2, i8 int8, n numeric(5,3), f4 real, f8 float8,
  b bool, t text, vc varchar(30), c char(4), j jsonb, arr int[], by bytea, d date, o oid,
  nn text NOT NULL DEFAULT 'x');
CREATE TABLE plugin_v1_nopk (a int, b text);
CREATE TABLE plugin_v1_full (id int PRIMARY KEY, a text, b int);
ALTER TABLE plugin_v1_full REPLICA IDENTITY FULL;
CREATE TABLE plugin_v1_idx (id int PRIMARY KEY, u int NOT NULL, v text);
CREATE UNIQUE INDEX plugin_v1_idx_u ON plugin_v1_idx (u);
ALTER TABLE plugin_v1_idx REPLICA IDENTITY USING INDEX plugin_v1_idx_u;
CREATE TABLE plugin_v1_nothing (id int PRIMARY KEY);
ALTER TABLE plugin_v1_nothing REPLICA IDENTITY NOTHING;

SELECT 'init' FROM pg_create_logical_replication_slot('plugin_v1', 'pgstream');

INSERT INTO plugin_v1_types VALUES (1, -32768, 9223372036854775807, 3.54, 876.563, 1e300, true,
  E'q"uo\\te/\n\t\b\f\r\u0001\u001f\u007f é 日本', 'v', 'ab', '{"a": [1, 2.50, null], "b": "x"}',
  '{1,NULL}', '\x00ff10', '2020-01-02', 4294967295, DEFAULT);
INSERT INTO plugin_v1_types (id, n, f4, f8, b) VALUES (2, 'NaN', 'Infinity', '-Infinity', false);
UPDATE plugin_v1_types SET t = 'null' WHERE id = 2;
UPDATE plugin_v1_types SET id = 3 WHERE id = 2;
DELETE FROM plugin_v1_types WHERE id = 3;
INSERT INTO plugin_v1_nopk VALUES (1, 'a');
UPDATE plugin_v1_nopk SET b = 'b';
DELETE FROM plugin_v1_nopk;
INSERT INTO plugin_v1_full VALUES (1, NULL, 2);
UPDATE plugin_v1_full SET b = 3;
DELETE FROM plugin_v1_full;
INSERT INTO plugin_v1_idx VALUES (1, 10, 'a');
UPDATE plugin_v1_idx SET v = 'b';
UPDATE plugin_v1_idx SET u = 11;
DELETE FROM plugin_v1_idx;
INSERT INTO plugin_v1_nothing VALUES (1);
UPDATE plugin_v1_nothing SET id = 2;
DELETE FROM plugin_v1_nothing;
BEGIN;
INSERT INTO plugin_v1_nopk VALUES (2, 'in txn');
SELECT 'msg' FROM pg_logical_emit_message(true, 'pre"fix', E'transactional \u0001');
SELECT 'msg' FROM pg_logical_emit_message(false, 'other', 'not transactional');
SAVEPOINT s1;
INSERT INTO plugin_v1_nopk VALUES (3, 'rolled back');
ROLLBACK TO s1;
TRUNCATE plugin_v1_nopk, plugin_v1_full;
COMMIT;

SELECT data FROM pg_logical_slot_peek_changes('plugin_v1', NULL, NULL, 'format-version', '1');
SELECT data FROM pg_logical_slot_peek_changes('plugin_v1', NULL, NULL, 'format-version', '1',
  'include-transaction', '0', 'include-schemas', '0', 'include-types', '0', 'include-pk', '1',
  'include-type-oids', '1', 'include-column-positions', '1', 'include-not-null', '1', 'include-default', '1',
  'add-tables', 'public.plugin_v1_types, public.plugin_v1_full, public.plugin_v1_idx');
SELECT data FROM pg_logical_slot_peek_changes('plugin_v1', NULL, NULL, 'format-version', '1',
  'include-transaction', '0', 'numeric-data-types-as-string', '1', 'add-tables', 'public.plugin_v1_types');
SELECT data FROM pg_logical_slot_peek_changes('plugin_v1', NULL, NULL, 'format-version', '1',
  'actions', 'update, truncate', 'filter-tables', 'public.plugin_v1_full', 'add-msg-prefixes', 'other');

-- header members that vary from run to run, checked by shape (key order: xid, nextlsn, timestamp, origin)
SELECT (data::json->>'xid')::xid = (data::json->>'xid')::xid AS has_xid,
       data::json->>'nextlsn' ~ '^[0-9A-F]+/[0-9A-F]+$' AS has_nextlsn,
       data::json->>'timestamp' ~ '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d' AS has_timestamp,
       data::json->>'origin' AS origin,
       regexp_replace(data, '^\{"xid":\d+,"nextlsn":"[0-9A-F/]+","timestamp":"[^"]+","origin":0,', '{') AS rest
FROM pg_logical_slot_peek_changes('plugin_v1', NULL, NULL, 'format-version', '1', 'include-xids', '1',
  'include-timestamp', '1', 'include-origin', '1', 'include-lsn', '1', 'include-types', '0',
  'add-tables', 'public.plugin_v1_full');

-- pretty-print (with raw type names) and write-in-chunks
SELECT data FROM pg_logical_slot_peek_changes('plugin_v1', NULL, NULL, 'format-version', '1',
  'pretty-print', '1', 'include-typmod', '0', 'include-pk', '1', 'add-tables', 'public.plugin_v1_types, public.plugin_v1_idx');
SELECT data FROM pg_logical_slot_peek_changes('plugin_v1', NULL, NULL, 'format-version', '1',
  'write-in-chunks', '1', 'include-types', '0', 'filter-tables', 'public.plugin_v1_types');

-- every record is valid JSON
SELECT count(*) AS records, count(data::json) AS json_records
FROM pg_logical_slot_get_changes('plugin_v1', NULL, NULL, 'format-version', '1', 'include-xids', '1',
  'include-timestamp', '1', 'include-origin', '1', 'include-lsn', '1', 'include-pk', '1', 'include-type-oids', '1',
  'include-column-positions', '1', 'include-not-null', '1', 'include-default', '1');

SELECT 'stop' FROM pg_drop_replication_slot('plugin_v1');
DROP TABLE plugin_v1_types, plugin_v1_nopk, plugin_v1_full, plugin_v1_idx, plugin_v1_nothing;
