-- Sequences and materialized views in the versions (migration 0013), in both version modes: each step prints them
-- from the latest version and check_log() verifies it equals a full rebuild.
CREATE EXTENSION pgstream;
\set SHOW_CONTEXT never
\i regress/include/schema_helpers.sql
CREATE FUNCTION pg_temp.sequences(s text) RETURNS SETOF text LANGUAGE sql AS $f$
    SELECT format('%s.%s %s start %s inc %s min %s max %s cache %s cycle %s owned_by %s', s, q ->> 'name',
                  q ->> 'data_type', q ->> 'start', q ->> 'increment', q ->> 'min', q ->> 'max', q ->> 'cache',
                  q ->> 'cycle', q -> 'owned_by')
    FROM (SELECT schema FROM pgstream.schema_log_full WHERE schema_name = s ORDER BY version DESC LIMIT 1) AS l,
         jsonb_array_elements(l.schema -> 'sequences') WITH ORDINALITY AS x(q, o)
    ORDER BY o
$f$;
CREATE FUNCTION pg_temp.materialized_views(s text) RETURNS SETOF text LANGUAGE sql AS $f$
    SELECT format('%s.%s %s: %s', s, m ->> 'name', m -> 'columns', m ->> 'definition')
    FROM (SELECT schema FROM pgstream.schema_log_full WHERE schema_name = s ORDER BY version DESC LIMIT 1) AS l,
         jsonb_array_elements(l.schema -> 'materialized_views') WITH ORDINALITY AS x(m, o)
    ORDER BY o
$f$;

SET pgstream.schema_versions = full;
\i regress/include/schema_sequences_steps.sql
SET pgstream.schema_versions = delta;
\i regress/include/schema_sequences_steps.sql
DROP EXTENSION pgstream;
