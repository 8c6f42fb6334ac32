-- JSON escaping is PostgreSQL's escape_json() byte for byte (what wal2json uses): compare every value
-- pgstream writes with to_json() of the same text, for every ASCII character at many offsets (the escaper
-- scans eight bytes at a time) and for non-ASCII text, which passes through raw.
\set VERBOSITY terse
SET synchronous_commit = on;

CREATE TABLE plugin_esc (id int PRIMARY KEY, t text, v varchar, c char(12), "we""ird name\t" text);
SELECT 'init' FROM pg_create_logical_replication_slot('plugin_esc', 'pgstream');
INSERT INTO plugin_esc
  SELECT i, repeat('a', i % 9) || chr(i) || repeat('b', (i * 7) % 11) || chr(128 - i),
         chr(i), chr(i), repeat(chr(i), 17)
  FROM generate_series(1, 127) AS i;
INSERT INTO plugin_esc VALUES (1000, 'é 日本 😀 ¿', 'ö', 'ü', E'\u2028\u00ff');
-- long values: escapes at every offset around the escaper's 4096-byte chunks (and compressed datums)
INSERT INTO plugin_esc
  SELECT 2000 + i, repeat('x', 4090 + i) || E'"\\\n\u0001' || repeat(E'ab"c\\d\u001fe\tfgh', 700), 'v', 'c',
         repeat('y', 4096 * 3 - i) || '"'
  FROM generate_series(0, 12) AS i;

WITH records AS (
  SELECT data
  FROM pg_logical_slot_peek_changes('plugin_esc', NULL, NULL, 'format-version', '2', 'include-transaction', '0',
    'include-types', '0')),
values_written AS (
  SELECT (data::json->'columns'->0->>'value')::int AS id, k - 1 AS n,
         data::json->'columns'->(k::int - 1)->>'value' AS decoded,
         m[1] AS written  -- the raw JSON text of the value
  FROM records,
       regexp_matches(data, '"value":(\d+|"(?:[^"\\]|\\.)*")', 'g') WITH ORDINALITY AS r(m, k))
SELECT count(*) AS values_checked,
       count(*) FILTER (WHERE w.n > 0) AS string_values,
       count(*) FILTER (WHERE w.n > 0 AND w.written = to_json(w.decoded)::text) AS same_as_escape_json,
       count(*) FILTER (WHERE w.decoded = CASE w.n WHEN 0 THEN e.id::text WHEN 1 THEN e.t WHEN 2 THEN e.v
                                             WHEN 3 THEN rpad(e.c::text, 12) ELSE e."we""ird name\t" END)
         AS round_trips
FROM values_written w JOIN plugin_esc e ON e.id = w.id;

-- the escaped column name, and control characters in both formats
SELECT data FROM pg_logical_slot_peek_changes('plugin_esc', NULL, NULL, 'format-version', '2',
  'include-transaction', '0', 'include-types', '0')
WHERE data::json->'columns'->0->>'value' IN ('8', '10', '34', '92', '127');
SELECT json_array_elements_text(data::json->'change'->0->'columnnames') AS column_name
FROM pg_logical_slot_peek_changes('plugin_esc', NULL, NULL, 'format-version', '1')
WHERE data LIKE '%"columnvalues":[1000,%';

-- jsonb values are written in one pass (not via jsonb_out and a second escape): the decoded JSON string
-- must be exactly jsonb_out's text, for scalars, nesting, empty containers and strings needing escapes
CREATE DOMAIN plugin_esc_jdom AS jsonb;
CREATE TABLE plugin_esc_jsonb (id int PRIMARY KEY, j jsonb, d plugin_esc_jdom);
INSERT INTO plugin_esc_jsonb (id, j) VALUES
  (1, 'null'), (2, 'true'), (3, 'false'), (4, '0'), (5, '-1.50e10'), (6, '1e-7'), (7, '12345678901234567890.125'),
  (8, '"str \"q\" \\ \n \t \u0001 \u001f é 日本 /"'), (9, '[]'), (10, '{}'), (11, '[[]]'), (12, '{"a": {}}'),
  (13, '{"a": [1, {"b": null}], "c": "x", "aa": true}'), (14, '[1, "2", [3, [4]], {"k": [{}]}, null, false]'),
  (15, '{"": ""}'), (16, '{"key\"q\\": "v\\\"", "\n": "\r\b\f"}'), (17, '""'), (18, '[""]'),
  (19, '{"n": -0.0, "m": 1.0000, "big": 1e300}');
INSERT INTO plugin_esc_jsonb (id, j)
  SELECT 100 + i, jsonb_build_object('long', repeat('x', 4090 + i) || E'"\\\n\u0001' || repeat(E'ab"c\\d', 800),
                                     'arr', jsonb_build_array(i, repeat('"', i), jsonb_build_object('k' || i, NULL)))
  FROM generate_series(0, 9) AS i;
UPDATE plugin_esc_jsonb SET d = j;
SELECT count(*) AS jsonb_values,
       count(*) FILTER (WHERE data::json->'columns'->1->>'value' = e.j::text) AS same_as_jsonb_out,
       count(*) FILTER (WHERE data::json->'columns'->2->>'value' = e.d::text) AS domain_same_as_jsonb_out
FROM pg_logical_slot_peek_changes('plugin_esc', NULL, NULL, 'format-version', '2', 'include-transaction', '0',
       'add-tables', 'public.plugin_esc_jsonb') AS c
  JOIN plugin_esc_jsonb e ON e.id = (c.data::json->'columns'->0->>'value')::int
WHERE data::json->>'action' = 'U';
SELECT data FROM pg_logical_slot_peek_changes('plugin_esc', NULL, NULL, 'format-version', '2',
  'include-transaction', '0', 'include-types', '0', 'add-tables', 'public.plugin_esc_jsonb')
WHERE data::json->>'action' = 'I' AND data::json->'columns'->0->>'value' IN ('5', '8', '14', '16');

-- text[] values are written in one pass too (other arrays go through array_out): the decoded JSON string
-- must be exactly array_out's text, including its quoting rules
CREATE TABLE plugin_esc_arrays (id int PRIMARY KEY, a text[], v varchar[]);
INSERT INTO plugin_esc_arrays (id, a) VALUES
  (1, '{}'), (2, '{NULL}'), (3, '{null,"NULL","nUlL","",x}'), (4, ARRAY['a b', E'tab\there', E'nl\n', 'vt' || chr(11), E'ff\f', E'cr\r']),
  (5, ARRAY['q"uote', E'back\\slash', '{brace}', 'com,ma', E'\\"', '"']), (6, ARRAY[E'\u0001ctl', 'é 日本', '/', 'plain']),
  (7, '{{a,b},{"c d",NULL}}'), (8, '[0:1]={a,"b c"}'), (9, ARRAY[repeat('x', 4100) || '"' || repeat('\', 3), NULL, '']);
UPDATE plugin_esc_arrays SET v = a::varchar[];
SELECT count(*) AS text_arrays,
       count(*) FILTER (WHERE data::json->'columns'->1->>'value' = e.a::text) AS same_as_array_out,
       count(*) FILTER (WHERE data::json->'columns'->2->>'value' = e.v::text) AS varchar_same_as_array_out
FROM pg_logical_slot_peek_changes('plugin_esc', NULL, NULL, 'format-version', '2', 'include-transaction', '0',
       'add-tables', 'public.plugin_esc_arrays') AS c
  JOIN plugin_esc_arrays e ON e.id = (c.data::json->'columns'->0->>'value')::int
WHERE data::json->>'action' = 'U';
SELECT data FROM pg_logical_slot_peek_changes('plugin_esc', NULL, NULL, 'format-version', '2',
  'include-transaction', '0', 'include-types', '0', 'add-tables', 'public.plugin_esc_arrays')
WHERE data::json->>'action' = 'I' AND data::json->'columns'->0->>'value' IN ('1', '3', '4', '5', '6', '7', '8');

SELECT 'stop' FROM pg_drop_replication_slot('plugin_esc');
DROP TABLE plugin_esc, plugin_esc_jsonb, plugin_esc_arrays;
DROP DOMAIN plugin_esc_jdom;
