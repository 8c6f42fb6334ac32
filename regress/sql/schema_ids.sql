-- Schema tracking: stable table and column ids.
CREATE EXTENSION IF NOT EXISTS pgstream;
\set SHOW_CONTEXT never
\i regress/include/schema_helpers.sql
CREATE SCHEMA ids;
CREATE SCHEMA ids_elsewhere;
CREATE TABLE ids.person (id int PRIMARY KEY, name text, born date);

-- ids look like the Go pgstream's (rs/xid: 20 characters of base32hex), and carry their minting time
SELECT id ~ '^[0-9a-v]{20}$' AS xid_format,
       pgstream.xid_time(id) BETWEEN now() - interval '1 minute' AND now() + interval '1 minute' AS minted_now
FROM pgstream.table_ids WHERE oid = 'ids.person'::regclass;
SELECT count(DISTINCT x) AS distinct_ids FROM (SELECT pgstream.xid() AS x FROM generate_series(1, 1000)) AS g;

-- remember the ids of the first version
CREATE TEMP TABLE first_ids AS
SELECT c ->> 'name' AS column_name, t ->> 'pgstream_id' AS table_id, c ->> 'pgstream_id' AS column_id
FROM pgstream.schema_log l, jsonb_array_elements(l.schema -> 'tables') AS t, jsonb_array_elements(t -> 'columns') AS c
WHERE l.schema_name = 'ids' AND l.version = (SELECT max(version) FROM pgstream.schema_log WHERE schema_name = 'ids');

-- renames, a type change, a rewrite, SET SCHEMA: the ids never change
ALTER TABLE ids.person RENAME COLUMN name TO full_name;
ALTER TABLE ids.person ALTER COLUMN born TYPE timestamp;
ALTER TABLE ids.person RENAME TO human;
VACUUM FULL ids.human;
ALTER TABLE ids.human SET SCHEMA ids_elsewhere;
-- a dropped column keeps its attnum to itself: a new column with the old name gets a new id
ALTER TABLE ids_elsewhere.human DROP COLUMN born;
ALTER TABLE ids_elsewhere.human ADD COLUMN born date;

CREATE TEMP TABLE latest_ids AS
SELECT c ->> 'name' AS column_name, t ->> 'pgstream_id' AS table_id, c ->> 'pgstream_id' AS column_id
FROM pgstream.schema_log l, jsonb_array_elements(l.schema -> 'tables') AS t, jsonb_array_elements(t -> 'columns') AS c
WHERE l.schema_name = 'ids_elsewhere'
  AND l.version = (SELECT max(version) FROM pgstream.schema_log WHERE schema_name = 'ids_elsewhere');

SELECT f.column_name AS first_name, l.column_name AS latest_name,
       l.table_id = f.table_id AS same_table_id,
       l.column_id = f.column_id AS same_column_id,
       l.column_id = l.table_id || '-' || right(l.column_id, 1) AS column_id_is_table_id_attnum
FROM latest_ids l FULL JOIN first_ids f ON f.column_id = l.column_id
ORDER BY l.column_id;
SELECT * FROM pg_temp.show('ids');
SELECT * FROM pg_temp.check_log();

-- a dropped table loses its id mapping (a later table that gets the same oid gets a new id), and a new table of
-- the same name gets a new id
CREATE TEMP TABLE dropped AS SELECT 'ids_elsewhere.human'::regclass::oid AS oid, table_id FROM latest_ids LIMIT 1;
DROP TABLE ids_elsewhere.human;
SELECT count(*) AS mappings_left FROM pgstream.table_ids WHERE oid = (SELECT oid FROM dropped);
CREATE TABLE ids_elsewhere.human (id int PRIMARY KEY);
SELECT t ->> 'pgstream_id' = (SELECT table_id FROM dropped) AS reused_id
FROM pgstream.schema_log l, jsonb_array_elements(l.schema -> 'tables') AS t
WHERE l.schema_name = 'ids_elsewhere'
  AND l.version = (SELECT max(version) FROM pgstream.schema_log WHERE schema_name = 'ids_elsewhere');

-- A mapping left behind for an oid (the table was dropped while logging was off) must not pass its id on to a new
-- table that gets the same oid. Oid reuse cannot be forced, so an event trigger that fires just before pgstream's
-- (event triggers fire in name order) plants such a mapping for the table being created.
CREATE FUNCTION ids.plant_stale_mapping() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pgstream.table_ids (id, oid, schema_name)
    SELECT 'stalestalestalestale', objid, 'ids' FROM pg_event_trigger_ddl_commands() WHERE object_type = 'table';
END $$;
CREATE EVENT TRIGGER a_plant_stale_mapping ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
    EXECUTE FUNCTION ids.plant_stale_mapping();
CREATE TABLE ids.recycled (a int);
DROP EVENT TRIGGER a_plant_stale_mapping;
SELECT count(*) AS stale_ids_in_log FROM pgstream.schema_log WHERE schema::text LIKE '%stalestalestalestale%';
SELECT count(*) AS mappings_of_new_table, count(*) FILTER (WHERE id = 'stalestalestalestale') AS stale
FROM pgstream.table_ids WHERE oid = 'ids.recycled'::regclass;
SELECT * FROM pg_temp.check_log();

SET client_min_messages = warning;
DROP SCHEMA ids, ids_elsewhere CASCADE;
DROP EXTENSION pgstream;
