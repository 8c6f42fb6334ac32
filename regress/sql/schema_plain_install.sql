-- Schema tracking without the extension: `pgstream init` applies migrations/*.sql as plain SQL, in order, on servers
-- where the extension cannot be installed. The files are idempotent and record themselves in pgstream.migrations.
-- (pg_regress runs from the repository root, so the paths below are relative to it.)
\set SHOW_CONTEXT never
\set ECHO none
SET client_min_messages = warning;
\i migrations/0001_schema_and_xid.sql
\i migrations/0002_schema_log_and_table_ids.sql
\i migrations/0003_describe_schema.sql
\i migrations/0004_log_schema.sql
\i migrations/0005_event_triggers.sql
\i migrations/0006_schema_log_wal_position.sql
\i migrations/0007_compose_schema_versions.sql
\i migrations/0008_webhooks_and_snapshots.sql
\i migrations/0009_delta_versions.sql
\i migrations/0010_describe_constraints_and_partitions.sql
\i migrations/0011_fixed_cost_per_ddl.sql
\i migrations/0012_schema_log_view.sql
\i migrations/0013_describe_sequences_and_materialized_views.sql
\i migrations/0014_fixed_cost_and_set_schema.sql
\i migrations/0015_describe_table_in_c.sql
RESET client_min_messages;
\set ECHO all
-- every migration file is applied above: this count must match
\! ls migrations/*.sql | wc -l
SELECT version, name FROM pgstream.migrations ORDER BY version;
SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'pgstream') AS extension,
       (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pgstream%') AS event_triggers;

CREATE FUNCTION pg_temp.show(s text) RETURNS SETOF text LANGUAGE sql AS $f$
    SELECT format('%s v%s %s(%s)', s, l.version, t ->> 'name',
                  (SELECT string_agg(c ->> 'name', ', ') FROM jsonb_array_elements(t -> 'columns') AS c))
    FROM (SELECT version, schema FROM pgstream.schema_log WHERE schema_name = s ORDER BY version DESC LIMIT 1) AS l,
         jsonb_array_elements(l.schema -> 'tables') AS t
$f$;

CREATE SCHEMA plain;
CREATE TABLE plain.t (id int PRIMARY KEY, a text);
ALTER TABLE plain.t ADD COLUMN b int;
SELECT * FROM pg_temp.show('plain');

-- applying the files again changes nothing and keeps the log
\set ECHO none
SET client_min_messages = warning;
\i migrations/0001_schema_and_xid.sql
\i migrations/0002_schema_log_and_table_ids.sql
\i migrations/0003_describe_schema.sql
\i migrations/0004_log_schema.sql
\i migrations/0005_event_triggers.sql
\i migrations/0006_schema_log_wal_position.sql
\i migrations/0007_compose_schema_versions.sql
\i migrations/0008_webhooks_and_snapshots.sql
\i migrations/0009_delta_versions.sql
\i migrations/0010_describe_constraints_and_partitions.sql
\i migrations/0011_fixed_cost_per_ddl.sql
\i migrations/0012_schema_log_view.sql
\i migrations/0013_describe_sequences_and_materialized_views.sql
\i migrations/0014_fixed_cost_and_set_schema.sql
\i migrations/0015_describe_table_in_c.sql
RESET client_min_messages;
\set ECHO all
SELECT count(*) AS migrations, (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pgstream%') AS event_triggers
FROM pgstream.migrations;
ALTER TABLE plain.t RENAME COLUMN a TO alpha;
SELECT * FROM pg_temp.show('plain');

-- the extension cannot be created over a plain install
CREATE EXTENSION pgstream;

-- uninstalling a plain install: dropping the schema takes the event triggers with it
SET client_min_messages = warning;
DROP SCHEMA pgstream CASCADE;
RESET client_min_messages;
SELECT count(*) AS event_triggers_left FROM pg_event_trigger WHERE evtname LIKE 'pgstream%';
ALTER TABLE plain.t ADD COLUMN c int;
DROP SCHEMA plain CASCADE;
