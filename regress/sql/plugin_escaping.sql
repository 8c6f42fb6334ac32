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

SELECT 'stop' FROM pg_drop_replication_slot('plugin_esc');
DROP TABLE plugin_esc;
