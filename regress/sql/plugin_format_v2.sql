-- format-version 2: records, identity rules, TRUNCATE, messages, per-column options and value rendering.
\set VERBOSITY terse
SET synchronous_commit = on;
SET extra_float_digits = 0;

CREATE TABLE plugin_v2_types (id int PRIMARY KEY, i2 int2, i8 int8, n numeric(5,3), f4 real, f8 float8,
  b bool, t text, vc varchar(30), c char(4), j jsonb, arr int[], by bytea, d date, o oid,
  nn text NOT NULL DEFAULT 'x');
CREATE TABLE plugin_v2_nopk (a int, b text);
CREATE TABLE plugin_v2_full (id int PRIMARY KEY, a text, b int);
ALTER TABLE plugin_v2_full REPLICA IDENTITY FULL;
CREATE TABLE plugin_v2_idx (id int PRIMARY KEY, u int NOT NULL, v text);
CREATE UNIQUE INDEX plugin_v2_idx_u ON plugin_v2_idx (u);
ALTER TABLE plugin_v2_idx REPLICA IDENTITY USING INDEX plugin_v2_idx_u;
CREATE TABLE plugin_v2_nothing (id int PRIMARY KEY);
ALTER TABLE plugin_v2_nothing REPLICA IDENTITY NOTHING;

SELECT 'init' FROM pg_create_logical_replication_slot('plugin_v2', 'pgstream');

INSERT INTO plugin_v2_types VALUES (1, -32768, 9223372036854775807, 3.54, 876.563, 1e300, true,
  E'q"uo\\te/\n\t\b\f\r\u0001\u001f\u007f é 日本', 'v', 'ab', '{"a": [1, 2.50, null], "b": "x"}',
  '{1,NULL}', '\x00ff10', '2020-01-02', 4294967295, DEFAULT);
INSERT INTO plugin_v2_types (id, n, f4, f8, b) VALUES (2, 'NaN', 'Infinity', '-Infinity', false);
UPDATE plugin_v2_types SET t = 'null' WHERE id = 2;
UPDATE plugin_v2_types SET id = 3 WHERE id = 2;
DELETE FROM plugin_v2_types WHERE id = 3;
INSERT INTO plugin_v2_nopk VALUES (1, 'a');
UPDATE plugin_v2_nopk SET b = 'b';
DELETE FROM plugin_v2_nopk;
INSERT INTO plugin_v2_full VALUES (1, NULL, 2);
UPDATE plugin_v2_full SET b = 3;
DELETE FROM plugin_v2_full;
INSERT INTO plugin_v2_idx VALUES (1, 10, 'a');
UPDATE plugin_v2_idx SET v = 'b';
UPDATE plugin_v2_idx SET u = 11;
DELETE FROM plugin_v2_idx;
INSERT INTO plugin_v2_nothing VALUES (1);
UPDATE plugin_v2_nothing SET id = 2;
DELETE FROM plugin_v2_nothing;
BEGIN;
INSERT INTO plugin_v2_nopk VALUES (2, 'in txn');
SELECT 'msg' FROM pg_logical_emit_message(true, 'pre"fix', E'transactional \u0001');
SELECT 'msg' FROM pg_logical_emit_message(false, 'other', 'not transactional');
SAVEPOINT s1;
INSERT INTO plugin_v2_nopk VALUES (3, 'rolled back');
ROLLBACK TO s1;
TRUNCATE plugin_v2_nopk, plugin_v2_full;
COMMIT;

SELECT data FROM pg_logical_slot_peek_changes('plugin_v2', NULL, NULL, 'format-version', '2');
SELECT data FROM pg_logical_slot_peek_changes('plugin_v2', NULL, NULL, 'format-version', '2',
  'include-transaction', '0', 'include-schemas', '0', 'include-types', '0', 'include-pk', '1',
  'include-type-oids', '1', 'include-column-positions', '1', 'include-not-null', '1', 'include-default', '1',
  'add-tables', 'public.plugin_v2_types, public.plugin_v2_full, public.plugin_v2_idx');
SELECT data FROM pg_logical_slot_peek_changes('plugin_v2', NULL, NULL, 'format-version', '2',
  'include-transaction', '0', 'numeric-data-types-as-string', '1', 'add-tables', 'public.plugin_v2_types');
SELECT data FROM pg_logical_slot_peek_changes('plugin_v2', NULL, NULL, 'format-version', '2',
  'actions', 'update, truncate', 'filter-tables', 'public.plugin_v2_full', 'add-msg-prefixes', 'other');

-- the members that vary from run to run, checked by shape
SELECT data::json->>'action' AS action,
       (data::json->>'xid')::xid = (data::json->>'xid')::xid AS has_xid,
       data::json->>'timestamp' ~ '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d' AS has_timestamp,
       data::json->>'origin' AS origin,
       data::json->>'lsn' ~ '^[0-9A-F]+/[0-9A-F]+$' AS has_lsn,
       data::json->>'nextlsn' ~ '^[0-9A-F]+/[0-9A-F]+$' AS has_nextlsn
FROM pg_logical_slot_peek_changes('plugin_v2', NULL, NULL, 'format-version', '2', 'include-xids', '1',
  'include-timestamp', '1', 'include-origin', '1', 'include-lsn', '1', 'add-tables', 'public.plugin_v2_full')
WHERE data::json->>'action' IN ('C', 'B') OR data::json->>'table' = 'plugin_v2_full' OR data::json->>'action' = 'M';

-- every record is valid JSON
SELECT count(*) AS records, count(data::json) AS json_records
FROM pg_logical_slot_get_changes('plugin_v2', NULL, NULL, 'format-version', '2', 'include-xids', '1',
  'include-timestamp', '1', 'include-origin', '1', 'include-lsn', '1', 'include-pk', '1', 'include-type-oids', '1',
  'include-column-positions', '1', 'include-not-null', '1', 'include-default', '1');

SELECT 'stop' FROM pg_drop_replication_slot('plugin_v2');
DROP TABLE plugin_v2_types, plugin_v2_nopk, plugin_v2_full, plugin_v2_idx, plugin_v2_nothing;
