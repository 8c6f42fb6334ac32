-- Foreign keys, check constraints and partitions in the table descriptions (migration 0010), in both version
-- modes: each step prints the members and check_log() verifies the latest version equals a full rebuild.
CREATE EXTENSION pgstream;
\set SHOW_CONTEXT never
\i regress/include/schema_helpers.sql
CREATE FUNCTION pg_temp.members(s text, tbl text) RETURNS TABLE (foreign_keys jsonb, check_constraints jsonb,
    partition_of text, partition_bound text, partition_key text) LANGUAGE sql AS $f$
    SELECT jsonb_path_query_array(t -> 'foreign_keys', '$[*].definition'),
           jsonb_path_query_array(t -> 'check_constraints', '$[*].definition'),
           t ->> 'partition_of', t ->> 'partition_bound', t ->> 'partition_key'
    FROM (SELECT schema FROM pgstream.schema_log_full WHERE schema_name = s ORDER BY version DESC LIMIT 1) AS l,
         jsonb_array_elements(l.schema -> 'tables') AS t
    WHERE t ->> 'name' = tbl
$f$;

SET pgstream.schema_versions = full;
\i regress/include/schema_constraints_steps.sql
SET pgstream.schema_versions = delta;
\i regress/include/schema_constraints_steps.sql
DROP EXTENSION pgstream;
