-- Schema tracking: an ordinary table owner's DDL is logged without rights on pgstream, and cannot be hidden or
-- hijacked by that owner.
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
CREATE ROLE regress_pgstream_owner NOLOGIN;
CREATE SCHEMA sec AUTHORIZATION regress_pgstream_owner;

SET SESSION AUTHORIZATION regress_pgstream_owner;
SELECT has_schema_privilege('pgstream', 'USAGE') AS usage_on_pgstream;
SELECT count(*) FROM pgstream.schema_log;

-- the owner's DDL is logged all the same (the trigger function is SECURITY DEFINER)
CREATE TABLE sec.accounts (id int PRIMARY KEY, email text NOT NULL UNIQUE);
ALTER TABLE sec.accounts ADD COLUMN plan text DEFAULT 'free';

-- functions named like the catalog's, earlier in the search path, cannot hijack the logging: it pins its own
CREATE FUNCTION sec.format_type(oid, integer) RETURNS text LANGUAGE sql AS $$ SELECT 'hijacked' $$;
CREATE FUNCTION sec.pg_get_expr(pg_node_tree, oid) RETURNS text LANGUAGE sql AS $$ SELECT 'hijacked' $$;
CREATE FUNCTION sec.never_equal(oid, oid) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$;
CREATE OPERATOR sec.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = sec.never_equal);
CREATE FUNCTION sec.jsonb_set(jsonb, text[], jsonb, boolean DEFAULT true) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"hijacked": true}'::jsonb $$;
SET search_path = sec, pg_catalog;
ALTER TABLE accounts ADD COLUMN note varchar(40) DEFAULT 'x';
SELECT format_type('int4'::regtype, -1) AS the_owner_sees, 1::oid = 1::oid AS one_equals_one;

-- only a superuser session may turn logging off
SET pgstream.skip_log = on;
ALTER TABLE accounts ADD COLUMN not_hidden int;
RESET pgstream.skip_log;
RESET search_path;
RESET SESSION AUTHORIZATION;

SELECT * FROM pg_temp.show('sec');
SELECT count(*) AS hijacked_versions FROM pgstream.schema_log WHERE schema::text LIKE '%hijacked%';
SELECT * FROM pg_temp.check_log();

SET client_min_messages = warning;
DROP SCHEMA sec CASCADE;
DROP ROLE regress_pgstream_owner;
DROP EXTENSION pgstream;
