-- Schema tracking: the ordering proof decoded by the pgstream output plugin, through a slot made by pgstream.init()
-- with its defaults; the same changes decoded by wal2json must agree.
CREATE EXTENSION IF NOT EXISTS pgstream;
\set SHOW_CONTEXT never
\i regress/include/schema_helpers.sql
CREATE SCHEMA ordp;
CREATE TABLE ordp.items (id int PRIMARY KEY, name text);
SELECT pgstream.init(log_existing_schemas => false) AS slot;
SELECT plugin FROM pg_replication_slots WHERE slot_name = pgstream.default_slot_name();
SELECT 'created' FROM pg_create_logical_replication_slot('regress_pgstream_order_oracle', 'wal2json');

BEGIN;
ALTER TABLE ordp.items ADD COLUMN note text;
INSERT INTO ordp.items VALUES (1, 'first', 'needs the note column');
COMMIT;
BEGIN;
ALTER TABLE ordp.items ADD COLUMN never_streamed int;
INSERT INTO ordp.items VALUES (2, 'second', 'x', 2);
ROLLBACK;
BEGIN;
ALTER TABLE ordp.items ADD COLUMN qty int;
CREATE TABLE ordp.extra (id int);
INSERT INTO ordp.items VALUES (3, 'third', 'y', 3);
COMMIT;

CREATE TEMP TABLE decoded AS
SELECT 'pgstream' AS plugin, row_number() OVER () AS position, data::jsonb AS change
FROM pg_logical_slot_get_changes(pgstream.default_slot_name(), NULL, NULL, 'format-version', '2')
UNION ALL
SELECT 'wal2json', row_number() OVER (), data::jsonb
FROM pg_logical_slot_get_changes('regress_pgstream_order_oracle', NULL, NULL, 'format-version', '2');

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
FROM decoded WHERE plugin = 'pgstream' AND change ->> 'schema' IS DISTINCT FROM 'pg_temp' ORDER BY position;

-- the two plugins agree change for change, schema versions included
SELECT count(*) AS changes,
       count(*) FILTER (WHERE p.change IS NOT DISTINCT FROM w.change) AS identical
FROM (SELECT * FROM decoded WHERE plugin = 'pgstream') AS p
FULL JOIN (SELECT * FROM decoded WHERE plugin = 'wal2json') AS w USING (position);

SELECT pg_drop_replication_slot('regress_pgstream_order_oracle');
SELECT pgstream.tear_down();
SET client_min_messages = warning;
DROP SCHEMA ordp CASCADE;
DROP EXTENSION pgstream;
