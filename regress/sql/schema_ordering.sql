-- Schema tracking: a schema change reaches the stream before the first row that needs it. Decoded with wal2json
-- (the oracle; the pgstream plugin variant is schema_ordering_pgstream).
CREATE EXTENSION IF NOT EXISTS pgstream;
\set SHOW_CONTEXT never
\i regress/include/schema_helpers.sql
CREATE SCHEMA ord;
CREATE TABLE ord.items (id int PRIMARY KEY, name text);
SELECT 'created' FROM pg_create_logical_replication_slot('regress_pgstream_order', 'wal2json');

-- one transaction: a new column, then a row that uses it
BEGIN;
ALTER TABLE ord.items ADD COLUMN note text;
INSERT INTO ord.items VALUES (1, 'first', 'needs the note column');
COMMIT;
-- a rolled-back DDL and its row never reach the stream
BEGIN;
ALTER TABLE ord.items ADD COLUMN never_streamed int;
INSERT INTO ord.items VALUES (2, 'second', 'x', 2);
ROLLBACK;
-- two statements in one transaction: both versions, in order, before the row
BEGIN;
ALTER TABLE ord.items ADD COLUMN qty int;
CREATE TABLE ord.extra (id int);
INSERT INTO ord.items VALUES (3, 'third', 'y', 3);
COMMIT;

-- format-version 2: one message per change
CREATE TEMP TABLE v2 AS
SELECT row_number() OVER () AS position, data::jsonb AS change
FROM pg_logical_slot_peek_changes('regress_pgstream_order', NULL, NULL, 'format-version', '2',
                                  'include-transaction', 'true');
SELECT position, change ->> 'action' AS action, change ->> 'schema' || '.' || (change ->> 'table') AS relation,
       CASE WHEN change ->> 'table' = 'schema_log_entries' THEN
           format('version %s of %s, items columns: %s',
                  (SELECT c ->> 'value' FROM jsonb_array_elements(change -> 'columns') AS c WHERE c ->> 'name' = 'version'),
                  (SELECT c ->> 'value' FROM jsonb_array_elements(change -> 'columns') AS c WHERE c ->> 'name' = 'schema_name'),
                  (SELECT string_agg(col ->> 'name', ',')
                   FROM jsonb_array_elements(change -> 'columns') AS c,
                        -- a delta (the default) carries the changed tables, a whole version all of them
                        jsonb_array_elements(coalesce((c ->> 'value')::jsonb -> 'changed',
                                                      (c ->> 'value')::jsonb -> 'tables')) AS t,
                        jsonb_array_elements(t -> 'columns') AS col
                   WHERE c ->> 'name' = 'schema' AND t ->> 'name' = 'items'))
       WHEN change ->> 'table' = 'items' THEN
           'row columns: ' || (SELECT string_agg(c ->> 'name', ',') FROM jsonb_array_elements(change -> 'columns') AS c)
       END AS detail
FROM v2 ORDER BY position;

-- format-version 1: one message per transaction; inside it the schema_log insert precedes the row
SELECT row_number() OVER () AS txn,
       (SELECT string_agg(c ->> 'kind' || ' ' || (c ->> 'schema') || '.' || (c ->> 'table'), ', ' ORDER BY o)
        FROM jsonb_array_elements(data::jsonb -> 'change') WITH ORDINALITY AS x(c, o)) AS changes
FROM pg_logical_slot_get_changes('regress_pgstream_order', NULL, NULL, 'format-version', '1')
WHERE jsonb_array_length(data::jsonb -> 'change') > 0;  -- not the catalog-only transaction of CREATE TEMP TABLE v2

SELECT pg_drop_replication_slot('regress_pgstream_order');
SET client_min_messages = warning;
DROP SCHEMA ord CASCADE;
DROP EXTENSION pgstream;
