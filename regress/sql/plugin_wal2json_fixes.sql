-- The wal2json bugs pgstream fixes on purpose (docs/wal2json-compatibility.md): every record stays valid
-- JSON where wal2json 2.5 emits broken JSON or corrupt values.
\set VERBOSITY terse
SET synchronous_commit = on;

CREATE SCHEMA "Fix Sch";
CREATE TYPE "Fix Sch"."Mood" AS ENUM ('ok');
CREATE TYPE "Fix Sch".lower_mood AS ENUM ('fine');
CREATE TYPE "Quoted Fix" AS ENUM ('q');
CREATE TYPE "Emb""Fix" AS ENUM ('e');
-- a pg_type.typname that itself starts and ends with '"' (what include-typmod=0 prints)
CREATE TYPE """Lit""" AS ENUM ('lit');
CREATE TABLE plugin_fix_types (id int PRIMARY KEY, m "Fix Sch"."Mood", l "Fix Sch".lower_mood,
  q "Quoted Fix", qa "Quoted Fix"[]);
CREATE TABLE plugin_fix_pktypes (k "Quoted Fix", ka "Quoted Fix"[], e "Emb""Fix", lit """Lit""", v int,
  PRIMARY KEY (k, ka, e, lit));
CREATE TABLE plugin_fix_defaults (id int PRIMARY KEY, a text DEFAULT 'say "hi"', b text DEFAULT E'two\nlines',
  c text DEFAULT E'back\\slash');
CREATE TABLE plugin_fix_bytea (id int PRIMARY KEY, b bytea);

SELECT 'init' FROM pg_create_logical_replication_slot('plugin_fixes', 'pgstream');

-- (a) a type name wal2json pastes raw stays raw where that is one valid JSON string ("Quoted Fix" gives
-- "type":"Quoted Fix", as in wal2json); schema-qualified quoted names, embedded "" and the v1 pktypes of
-- quoted arrays are JSON-escaped instead of wal2json's invalid JSON
INSERT INTO plugin_fix_types VALUES (1, 'ok', 'fine', 'q', '{q}');
INSERT INTO plugin_fix_pktypes VALUES ('q', '{q}', 'e', 'lit', 1);
UPDATE plugin_fix_pktypes SET v = 2;
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

SELECT data FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '2',
  'include-transaction', '0', 'include-pk', '1', 'add-tables', 'public.plugin_fix_pktypes');
SELECT data FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '1',
  'include-pk', '1', 'add-tables', 'public.plugin_fix_pktypes')
WHERE data <> '{"change":[]}';
SELECT data FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '1',
  'include-pk', '1', 'include-typmod', '0', 'add-tables', 'public.plugin_fix_pktypes')
WHERE data <> '{"change":[]}';

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
SELECT count(*) AS records, count(data::json) AS json_records
FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '1', 'include-pk', '1',
  'include-typmod', '0');
-- the parsed values round-trip (a plain quoted name loses its quotes, as in wal2json)
SELECT data::json->'columns'->1->>'type' AS mood_type, data::json->'columns'->3->>'type' AS quoted_type
FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '2', 'include-transaction', '0',
  'add-tables', 'public.plugin_fix_types')
WHERE data::json->>'action' = 'I';
SELECT json_array_elements_text(data::json->'change'->0->'columndefaults') AS default_expression
FROM pg_logical_slot_peek_changes('plugin_fixes', NULL, NULL, 'format-version', '1', 'include-default', '1',
  'add-tables', 'public.plugin_fix_defaults')
WHERE data <> '{"change":[]}';

SELECT 'stop' FROM pg_drop_replication_slot('plugin_fixes');
DROP TABLE plugin_fix_types, plugin_fix_pktypes, plugin_fix_defaults, plugin_fix_bytea;
DROP TYPE "Quoted Fix", "Emb""Fix", """Lit""";
DROP SCHEMA "Fix Sch" CASCADE;
