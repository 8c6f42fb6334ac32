-- Delta versions (pgstream.schema_versions = delta, the default since 0.5.0): a version carries only the touched
-- tables that changed and the oids of those that left. pgstream.schema_log_entries holds what was written (and what
-- the WAL carries); the view pgstream.schema_log (and schema_log_full, schema_at()) shows the full document.
-- 1. The whole DDL corpus of schema_ddl in delta mode: the helpers read schema_log_full, so every step must print
--    what it prints in full mode and every latest version must equal a full rebuild (check_log).
SET pgstream.schema_versions = delta;
\i regress/sql/schema_ddl.sql

-- 2. What is written: deltas after the first (full) version, each version's composed document equal to a full
--    rebuild at that point, and the size of a delta independent of the schema's size.
CREATE EXTENSION pgstream;
SET pgstream.schema_versions = delta;
CREATE SCHEMA dl;
SELECT format('CREATE TABLE dl.t_%s (id int PRIMARY KEY, note text)', i) FROM generate_series(1, 200) AS i \gexec
CREATE TEMP TABLE rebuilt AS SELECT 0::bigint AS version, NULL::jsonb AS schema WITH NO DATA;
INSERT INTO rebuilt SELECT max(version), pgstream.get_schema('dl') FROM pgstream.schema_log WHERE schema_name = 'dl';
ALTER TABLE dl.t_7 ADD COLUMN extra text;
INSERT INTO rebuilt SELECT max(version), pgstream.get_schema('dl') FROM pgstream.schema_log WHERE schema_name = 'dl';
ALTER TABLE dl.t_8 RENAME TO a_first;
INSERT INTO rebuilt SELECT max(version), pgstream.get_schema('dl') FROM pgstream.schema_log WHERE schema_name = 'dl';
DROP TABLE dl.t_9;
INSERT INTO rebuilt SELECT max(version), pgstream.get_schema('dl') FROM pgstream.schema_log WHERE schema_name = 'dl';
GRANT SELECT ON dl.t_10 TO PUBLIC;  -- no change, no version
INSERT INTO rebuilt SELECT max(version), pgstream.get_schema('dl') FROM pgstream.schema_log WHERE schema_name = 'dl';
SELECT r.version, l.schema ? 'delta' AS is_delta, jsonb_array_length(l.schema -> 'changed') AS changed,
       jsonb_array_length(l.schema -> 'delta' -> 'removed') AS removed,
       f.schema = r.schema AS equals_rebuild
FROM (SELECT DISTINCT ON (version) * FROM rebuilt ORDER BY version) r
JOIN pgstream.schema_log_entries l ON l.schema_name = 'dl' AND l.version = r.version
JOIN pgstream.schema_log f ON f.id = l.id
ORDER BY r.version;
-- A delta's size does not depend on the 200 tables around it (a full version here is ~40 times larger).
SELECT max(pg_column_size(schema)) < 2000 AS delta_small,
       (SELECT pg_column_size(schema) FROM pgstream.schema_log_full WHERE schema_name = 'dl'
        ORDER BY version DESC LIMIT 1) > 20 * max(pg_column_size(schema)) AS full_large
FROM pgstream.schema_log_entries WHERE schema_name = 'dl' AND schema ? 'delta';

-- 3. Switching modes: full versions after deltas compose from the composed document, deltas after full versions
--    start from it; every version stays equal to a full rebuild.
SET pgstream.schema_versions = full;
ALTER TABLE dl.t_11 ADD COLUMN in_full text;
GRANT SELECT ON dl.t_12 TO PUBLIC;  -- still no version
SELECT version, schema ? 'delta' AS is_delta, schema = pgstream.get_schema('dl') AS equals_rebuild
FROM pgstream.schema_log_entries WHERE schema_name = 'dl' ORDER BY version DESC LIMIT 1;
SET pgstream.schema_versions = delta;
ALTER TABLE dl.t_12 ADD COLUMN in_delta text;
SELECT version, schema ? 'delta' AS is_delta, jsonb_array_length(schema -> 'changed') AS changed
FROM pgstream.schema_log_entries WHERE schema_name = 'dl' ORDER BY version DESC LIMIT 1;
SELECT * FROM pg_temp.check_log();
-- refresh_schema() writes a full version when the schema changed unlogged; the next delta reloads the current
-- descriptions from it.
SELECT pgstream.refresh_schema('dl');  -- nothing changed: nothing written
SET pgstream.skip_log = on;
ALTER TABLE dl.t_15 ADD COLUMN unlogged text;
RESET pgstream.skip_log;
SELECT pgstream.refresh_schema('dl');
ALTER TABLE dl.t_13 DROP CONSTRAINT t_13_pkey;
CREATE INDEX t_14_note ON dl.t_14 (note);
DROP INDEX dl.t_14_note;  -- the index's table is found in the current descriptions
SELECT version, schema ? 'delta' AS is_delta FROM pgstream.schema_log_entries WHERE schema_name = 'dl' ORDER BY version DESC LIMIT 4;
SELECT * FROM pg_temp.check_log();
-- A dropped schema is a full "dropped" marker; the schema created again starts with a full version.
SET client_min_messages = warning;
DROP SCHEMA dl CASCADE;
RESET client_min_messages;
CREATE SCHEMA dl;
CREATE TABLE dl.again (id int);
SELECT version, schema ? 'delta' AS is_delta, schema ? 'dropped' AS dropped, schema -> 'delta' -> 'base_version' AS base,
       jsonb_path_query_array(coalesce(schema -> 'changed', schema -> 'tables'), '$[*].name') AS tables
FROM pgstream.schema_log_entries WHERE schema_name = 'dl' ORDER BY version;
SELECT count(*) AS current_descriptions FROM pgstream.schema_tables WHERE schema_name = 'dl';

-- 4. Deltas never outgrow the last whole document (nor 64 kB): the version that would is written whole, so composing
--    any version reads at most about twice the document. A table of 100 columns makes deltas of ~15 kB.
CREATE SCHEMA dw;
SELECT format('CREATE TABLE dw.wide (%s)', string_agg(format('c_%s int', i), ', ')) FROM generate_series(1, 100) AS i \gexec
TRUNCATE rebuilt;
SELECT statement FROM generate_series(1, 8) AS i,
     LATERAL (VALUES (1, format('ALTER TABLE dw.wide ADD COLUMN extra_%s int', i)),
                     (2, 'INSERT INTO rebuilt SELECT max(version), pgstream.get_schema(''dw'') FROM pgstream.schema_log_entries WHERE schema_name = ''dw''')) AS s(n, statement)
ORDER BY i, n \gexec
SELECT e.version, e.schema ? 'delta' AS is_delta, l.schema = r.schema AS equals_rebuild
FROM pgstream.schema_log_entries e JOIN pgstream.schema_log l USING (id) LEFT JOIN rebuilt r ON r.version = e.version
WHERE e.schema_name = 'dw' ORDER BY e.version;
SELECT full_bytes > 0 AS whole_size_known, delta_bytes < 65536 AS deltas_below_64_kb
FROM pgstream.schema_tables_synced WHERE schema_name = 'dw';
SELECT * FROM pg_temp.check_log();

-- 5. An unknown mode fails the DDL and says which values are accepted.
SET pgstream.schema_versions = partial;
CREATE TABLE dl.never (id int);
RESET pgstream.schema_versions;
SET client_min_messages = warning;
DROP SCHEMA dl, dw CASCADE;
RESET client_min_messages;
DROP EXTENSION pgstream;
