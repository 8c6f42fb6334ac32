-- Schema tracking: an ordinary table owner's DDL is logged without rights on pgstream, and cannot be hidden or
-- hijacked by that owner.
CREATE EXTENSION IF NOT EXISTS pgstream;
\set SHOW_CONTEXT never
\i regress/include/schema_helpers.sql
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

-- the shipper's rights (docs/schema-tracking.md): SELECT and UPDATE (acked) on the view pgstream.schema_log are
-- enough to read whole documents composed from delta versions and to acknowledge them; the table stays closed
CREATE ROLE regress_pgstream_reader NOLOGIN;
GRANT USAGE ON SCHEMA pgstream TO regress_pgstream_reader;
GRANT SELECT, UPDATE (acked) ON pgstream.schema_log TO regress_pgstream_reader;
SELECT count(*) FILTER (WHERE schema ? 'delta') AS delta_versions FROM pgstream.schema_log_entries WHERE schema_name = 'sec';
SET SESSION AUTHORIZATION regress_pgstream_reader;
SELECT version, schema ? 'delta' AS is_delta, jsonb_array_length(schema -> 'tables') AS tables
FROM pgstream.schema_log WHERE schema_name = 'sec' ORDER BY version DESC LIMIT 1;
UPDATE pgstream.schema_log SET acked = true WHERE schema_name = 'sec' AND NOT acked;
UPDATE pgstream.schema_log SET schema_name = 'other' WHERE schema_name = 'sec';
SELECT count(*) FROM pgstream.schema_log_entries;
RESET SESSION AUTHORIZATION;
SELECT bool_and(acked) AS all_acked FROM pgstream.schema_log_entries WHERE schema_name = 'sec';

SET client_min_messages = warning;
DROP SCHEMA sec CASCADE;
DROP OWNED BY regress_pgstream_reader;
DROP ROLE regress_pgstream_reader;
DROP ROLE regress_pgstream_owner;
DROP EXTENSION pgstream;
