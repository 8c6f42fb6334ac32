-- pgstream.compose_tables(): the C version (extension/schema_compose.cpp) composes a schema version from the
-- previous one by copying untouched tables' binary JSON; it must give what the SQL version (and a full rebuild)
-- gives, byte for byte, so that an unchanged schema is recognised as unchanged.
CREATE EXTENSION IF NOT EXISTS pgstream;

-- the extension installs the C version
SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.oid = 'pgstream.compose_tables(jsonb, oid[], jsonb[])'::regprocedure;

-- Tables as describe_table() would give them; 40 of them, so the "tables" array has more than JB_OFFSET_STRIDE (32)
-- elements and stores both offsets and lengths.
CREATE FUNCTION pg_temp.t(oid int, name text, extra jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('oid', oid::text, 'name', name, 'pgstream_id', 'id' || oid,
                              'columns', jsonb_build_array(jsonb_build_object('name', 'c', 'type', 'int',
                                                                              'nullable', true)),
                              'indexes', '[]'::jsonb) || extra
$$;
CREATE TEMP TABLE base AS
SELECT jsonb_build_object('tables', jsonb_agg(pg_temp.t(i, format('t_%s', lpad(i::text, 3, '0'))) ORDER BY i)) AS doc
FROM generate_series(1, 40) AS i;
-- a document with other members around "tables", one a numeric (stored aligned) and one a nested object
CREATE TEMP TABLE wide AS
SELECT doc || '{"a": 1.50, "zz": {"k": [1, "x", null]}, "b": "s"}'::jsonb AS doc FROM base;

CREATE FUNCTION pg_temp.both(prev jsonb, touched oid[], described jsonb[]) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN c IS NOT DISTINCT FROM s
                THEN 'same: ' || coalesce(jsonb_typeof(c) || ' ' ||
                                          coalesce(jsonb_array_length(c -> 'tables')::text, '-'), 'SQL NULL')
                ELSE 'DIFFERENT: ' || coalesce(c::text, 'SQL NULL') || ' vs ' || coalesce(s::text, 'SQL NULL') END
    FROM (SELECT pgstream.compose_tables(prev, touched, described) AS c,
                 pgstream.compose_tables_sql(prev, touched, described) AS s) AS r
$$;

-- nothing changed: SQL NULL (the C version compares bytes, so its output must be PostgreSQL's own serialization)
SELECT pg_temp.both(doc, '{}', '{}') FROM base;
SELECT pg_temp.both(doc, '{}', '{}') FROM wide;
SELECT pg_temp.both(doc, '{5}', ARRAY[pg_temp.t(5, 't_005')]) FROM base;
-- a table re-described with a change, in the first, a middle, the 33rd and the last place
SELECT pg_temp.both(doc, '{}', ARRAY[pg_temp.t(i, format('t_%s', lpad(i::text, 3, '0')), '{"metadata": "m"}')])
FROM base, unnest(ARRAY[1, 17, 33, 40]) AS i;
SELECT pg_temp.both(doc, '{}', ARRAY[pg_temp.t(33, 't_033', '{"metadata": "m"}')]) FROM wide;
-- removed, added at either end and in the middle, renamed (moves), several at once, a NULL description
SELECT pg_temp.both(doc, '{1,40,20}', '{}') FROM base;
SELECT pg_temp.both(doc, '{}', ARRAY[pg_temp.t(100, 'a'), pg_temp.t(101, 'zzz'), pg_temp.t(102, 't_0205')]) FROM wide;
SELECT pg_temp.both(doc, '{}', ARRAY[pg_temp.t(2, 'zz_renamed'), pg_temp.t(39, 'a_renamed'), NULL]) FROM base;
-- names compare as COLLATE "C" bytes, as get_schema() orders them
SELECT pg_temp.both(doc, '{}', ARRAY[pg_temp.t(200, 'T_upper'), pg_temp.t(201, 'é'), pg_temp.t(202, 't_')])
FROM base;
SELECT (pgstream.compose_tables(doc, '{}', ARRAY[pg_temp.t(200, 'T_upper'), pg_temp.t(202, 't_')]) -> 'tables')
       -> 0 ->> 'name' AS first, doc = pgstream.compose_tables(pgstream.compose_tables(doc, '{}',
       ARRAY[pg_temp.t(200, 'x')]), '{200}', '{}') AS round_trip
FROM base;
-- every table removed, then an empty schema gaining one
SELECT pg_temp.both(doc, ARRAY(SELECT generate_series(1, 40)::oid), '{}') FROM base;
SELECT pg_temp.both('{"tables": []}', '{}', ARRAY[pg_temp.t(7, 'only')]);
-- not composable: JSON null, the caller builds from the catalogs
SELECT pg_temp.both('{"tables": null, "dropped": true}', '{}', '{}');
SELECT pg_temp.both('{"other": []}', '{}', '{}');
SELECT pg_temp.both('[1, 2]', '{}', '{}');
SELECT pg_temp.both(NULL, '{}', '{}');

-- Through the event trigger, at a size where the stride matters: every version equals a full rebuild.
CREATE SCHEMA comp;
SELECT format('CREATE TABLE comp.t_%s (id int PRIMARY KEY, a text)', i) FROM generate_series(1, 40) AS i \gexec
ALTER TABLE comp.t_33 ADD COLUMN b int;
ALTER TABLE comp.t_1 RENAME TO z_first_now_last;
DROP TABLE comp.t_20;
COMMENT ON COLUMN comp.t_40.a IS 'noted';
CREATE INDEX ON comp.t_7 (a);
SELECT count(*) AS versions,
       bool_and(l.schema = pgstream.get_schema('comp')) FILTER (WHERE l.version = m.latest) AS latest_equals_rebuild
FROM pgstream.schema_log l, (SELECT max(version) AS latest FROM pgstream.schema_log WHERE schema_name = 'comp') m
WHERE l.schema_name = 'comp';
-- a statement that changes nothing described logs nothing
GRANT SELECT ON comp.t_2 TO PUBLIC;
SELECT max(version) FROM pgstream.schema_log WHERE schema_name = 'comp';
SET client_min_messages = warning;
DROP SCHEMA comp CASCADE;
DROP EXTENSION pgstream;
