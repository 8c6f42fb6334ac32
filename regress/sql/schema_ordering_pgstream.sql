-- Schema tracking: the ordering proof decoded by the pgstream output plugin, through a slot made by pgstream.init()
-- with its defaults; the same changes decoded by wal2json must agree.
CREATE EXTENSION IF NOT EXISTS pgstream;
\set SHOW_CONTEXT never
-- Helpers (session-local) that print logged versions without their volatile ids and oids.
-- show(schema): the latest version of a schema, one line per table: columns, primary key, unique-not-null, indexes.
CREATE FUNCTION pg_temp.show(s text) RETURNS SETOF text LANGUAGE sql AS $f$
    WITH latest AS (
        SELECT version, schema FROM pgstream.schema_log WHERE schema_name = s ORDER BY version DESC LIMIT 1
    )
    SELECT format('%s v%s: %s', s, version, CASE WHEN schema ? 'dropped' THEN 'dropped' ELSE 'no tables' END)
    FROM latest WHERE schema ? 'dropped' OR jsonb_array_length(schema -> 'tables') = 0
    UNION ALL
    SELECT format('%s v%s %s(%s) pk%s unn%s idx[%s]', s, l.version, t ->> 'name',
        (SELECT string_agg(concat_ws(' ', c ->> 'name', c ->> 'type',
                    CASE WHEN NOT (c ->> 'nullable')::boolean THEN 'not null' END,
                    CASE WHEN (c ->> 'unique')::boolean THEN 'unique' END,
                    'default ' || (c ->> 'default'),
                    CASE WHEN (c ->> 'generated')::boolean THEN 'generated ' || (c ->> 'generated_kind') END,
                    CASE WHEN c ->> 'identity' <> '' THEN 'identity ' || (c ->> 'identity') END,
                    'comment ' || (c ->> 'metadata')), ', ' ORDER BY o)
         FROM jsonb_array_elements(t -> 'columns') WITH ORDINALITY AS x(c, o)),
        t -> 'primary_key_columns', t -> 'unique_not_null_columns',
        (SELECT string_agg(format('%s%s%s', i ->> 'name', i -> 'columns',
                    CASE WHEN (i ->> 'primary')::boolean THEN ' primary' WHEN (i ->> 'unique')::boolean THEN ' unique' ELSE '' END),
                    ', ' ORDER BY o)
         FROM jsonb_array_elements(t -> 'indexes') WITH ORDINALITY AS x(i, o)))
    FROM latest l, jsonb_array_elements(CASE WHEN jsonb_typeof(l.schema -> 'tables') = 'array' THEN l.schema -> 'tables' ELSE '[]' END) AS t
$f$;
-- check_log(): problems with the latest version of every logged schema (no rows = none). Each must equal a
-- description built from the catalogs in full (the trigger composes versions incrementally), a dropped schema must
-- not exist, and every id must be the table's id in pgstream.table_ids, columns "<table id>-<attnum>".
CREATE FUNCTION pg_temp.check_log() RETURNS SETOF text LANGUAGE sql AS $f$
    WITH latest AS (
        SELECT DISTINCT ON (schema_name) schema_name, version, schema
        FROM pgstream.schema_log ORDER BY schema_name, version DESC
    )
    SELECT format('%s v%s differs from a full rebuild', schema_name, version)
    FROM latest WHERE NOT schema ? 'dropped' AND schema <> pgstream.get_schema(schema_name)
    UNION ALL
    SELECT format('%s v%s is marked dropped but exists', schema_name, version)
    FROM latest WHERE schema ? 'dropped' AND EXISTS (SELECT FROM pg_namespace WHERE nspname = schema_name)
    UNION ALL
    SELECT format('%s.%s: table id is not the mapped id', l.schema_name, t ->> 'name')
    FROM latest l, jsonb_array_elements(CASE WHEN jsonb_typeof(l.schema -> 'tables') = 'array' THEN l.schema -> 'tables' ELSE '[]' END) AS t
    WHERE NOT EXISTS (SELECT FROM pgstream.table_ids ti WHERE ti.id = t ->> 'pgstream_id' AND ti.oid = (t ->> 'oid')::oid)
    UNION ALL
    SELECT format('%s.%s.%s: column id is not "<table id>-<attnum>"', l.schema_name, t ->> 'name', c ->> 'name')
    FROM latest l, jsonb_array_elements(CASE WHEN jsonb_typeof(l.schema -> 'tables') = 'array' THEN l.schema -> 'tables' ELSE '[]' END) AS t,
         jsonb_array_elements(t -> 'columns') AS c
    WHERE c ->> 'pgstream_id' IS DISTINCT FROM (t ->> 'pgstream_id') || '-' ||
          (SELECT attnum FROM pg_attribute WHERE attrelid = (t ->> 'oid')::oid AND attname = c ->> 'name')
$f$;
-- versions(): how many versions each schema has, to show which statements logged one.
CREATE FUNCTION pg_temp.versions() RETURNS TABLE (schema_name text, latest bigint, rows bigint) LANGUAGE sql AS $f$
    SELECT schema_name, max(version), count(*) FROM pgstream.schema_log GROUP BY 1 ORDER BY 1
$f$;
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
       CASE WHEN change ->> 'table' = 'schema_log' THEN
           format('version %s of %s, items columns: %s',
                  (SELECT c ->> 'value' FROM jsonb_array_elements(change -> 'columns') AS c WHERE c ->> 'name' = 'version'),
                  (SELECT c ->> 'value' FROM jsonb_array_elements(change -> 'columns') AS c WHERE c ->> 'name' = 'schema_name'),
                  (SELECT string_agg(col ->> 'name', ',')
                   FROM jsonb_array_elements(change -> 'columns') AS c,
                        jsonb_array_elements((c ->> 'value')::jsonb -> 'tables') AS t,
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
