-- The wal2json bugs pgstream fixes on purpose (docs/wal2json-compatibility.md): every record stays valid
-- JSON where wal2json 2.5 emits broken JSON or corrupt values.
\set VERBOSITY terse
SET synchronous_commit = on;

CREATE SCHEMA "Fix Sch";
CREATE TYPE "Fix Sch"."Mood" AS ENUM ('ok');
CREATE TYPE "Fix Sch".lower_mood AS ENUM ('fine');
CREATE TYPE "Quoted Fix" AS ENUM ('q');
CREATE TABLE plugin_fix_types (id int PRIMARY KEY, m "Fix Sch"."Mood", l "Fix Sch".lower_mood,
  q "Quoted Fix", qa "Quoted Fix"[]);
CREATE TABLE plugin_fix_defaults (id int PRIMARY KEY, a text DEFAULT 'say "hi"', b text DEFAULT E'two\nlines',
  c text DEFAULT E'back\\slash');
CREATE TABLE plugin_fix_bytea (id int PRIMARY KEY, b bytea);

SELECT 'init' FROM pg_create_logical_replication_slot('plugin_fixes', 'pgstream');

-- (a) quoted and schema-qualified type names are always JSON-escaped
INSERT INTO plugin_fix_types VALUES (1, 'ok', 'fine', 'q', '{q}');
-- (b) default expressions are JSON-escaped
INSERT INTO plugin_fix_defaults (id) VALUES (1);
-- (c) bytea is written as hex whatever bytea_output is (decoding below runs under bytea_output=escape)
INSERT INTO plugin_fix_bytea VALUES (1, '\x00ff105c22'), (2, '');
-- (d) a non-transactional message after a transaction with several changes has no leading comma (#266)
BEGIN;
INSERT INTO plugin_fix_bytea VALUES (3, 'a');
INSERT INTO plugin_fix_bytea VALUES (4, 'b');
COMMIT;
SELECT 'msg' FROM pg_logical_emit_message(false, 'fix', 'after a multi-change transaction');
-- a commit flushes the WAL, so that the message is visible to the peeks below
INSERT INTO plugin_fix_bytea VALUES (5, 'c');

SELECT data FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '2',
  'include-transaction', '0', 'include-default', '1', 'include-pk', '1', 'filter-tables', 'public.plugin_fix_bytea');
SELECT data FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '1',
  'include-default', '1', 'include-pk', '1', 'filter-tables', 'public.plugin_fix_bytea');

SET bytea_output = escape;
SELECT data FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '2',
  'include-transaction', '0', 'add-tables', 'public.plugin_fix_bytea');
SELECT data FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '1',
  'add-tables', 'public.plugin_fix_bytea');
RESET bytea_output;

-- every record of every format parses as JSON
SELECT count(*) AS records, count(data::json) AS json_records
FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '2', 'include-default', '1',
  'include-pk', '1', 'include-type-oids', '1');
SELECT count(*) AS records, count(data::json) AS json_records
FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '1', 'include-default', '1',
  'include-pk', '1', 'pretty-print', '1');
SELECT count(*) AS records, count(data::json) AS json_records
FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '1', 'include-default', '1',
  'include-typmod', '0', 'include-domain-data-type', '1');
-- the parsed values round-trip
SELECT data::json->'columns'->1->>'type' AS mood_type, data::json->'columns'->3->>'type' AS quoted_type
FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '2', 'include-transaction', '0',
  'add-tables', 'public.plugin_fix_types')
WHERE data::json->>'action' = 'I';
SELECT json_array_elements_text(data::json->'change'->0->'columndefaults') AS default_expression
FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '1', 'include-default', '1',
  'add-tables', 'public.plugin_fix_defaults')
WHERE data <> '{"change":[]}';

SELECT 'stop' FROM pg_drop_replication_slot('plugin_fixes');
DROP TABLE plugin_fix_types, plugin_fix_defaults, plugin_fix_bytea;
DROP TYPE "Quoted Fix";
DROP SCHEMA "Fix Sch" CASCADE;
