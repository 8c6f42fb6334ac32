-- 0001: schema pgstream, the migration ledger, and xid-style ids.
--
-- Every migration in this directory runs in two ways:
--   * concatenated into the extension install script (CREATE EXTENSION pgstream), and
--   * applied one file at a time, in order, by `pgstream init` on servers where the extension cannot be installed.
-- So each file is idempotent (IF NOT EXISTS, CREATE OR REPLACE, guarded DO blocks) and ends by recording itself in
-- pgstream.migrations; a runner applies only the files whose number is not recorded there yet.
-- No transaction control here: the extension script runs inside CREATE EXTENSION's transaction.

-- pgstream.control names no schema, so under CREATE EXTENSION this statement creates the schema as a member of the
-- extension and DROP EXTENSION removes it with everything in it. (A control-file `schema = pgstream` would make
-- the schema the extension's home, which can never be a member, and DROP EXTENSION would leave it behind.)
-- A schema pgstream left by a plain-SQL install makes CREATE EXTENSION fail with "schema pgstream is not a member
-- of extension pgstream": drop it first (DROP SCHEMA pgstream CASCADE).
CREATE SCHEMA IF NOT EXISTS pgstream;

CREATE TABLE IF NOT EXISTS pgstream.migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Ids have the layout of github.com/rs/xid (what the Go pgstream stores), so consumers written for it can parse ours:
-- 12 bytes = 4-byte unix seconds, 3-byte machine id, 2-byte backend pid, 3-byte counter, in lowercase base32hex.
-- Unlike an oid they are never reused, which is what makes them usable as stable table ids.
DO $$
BEGIN
    CREATE DOMAIN pgstream.xid AS char(20) CHECK (VALUE ~ '^[0-9a-v]{20}$');
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

CREATE SEQUENCE IF NOT EXISTS pgstream.xid_counter MINVALUE 0 MAXVALUE 16777215 CYCLE;

CREATE OR REPLACE FUNCTION pgstream.xid(at timestamptz DEFAULT clock_timestamp())
RETURNS pgstream.xid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    alphabet constant text := '0123456789abcdefghijklmnopqrstuv';
    machine  bigint;
    bits     bit(100);
    encoded  text := '';
BEGIN
    SELECT system_identifier & 16777215 INTO machine FROM pg_control_system();
    -- 96 payload bits plus 4 zero bits of padding make exactly 20 groups of 5 bits.
    bits := floor(extract(epoch FROM at))::bigint::bit(32)
            || machine::bit(24)
            || pg_backend_pid()::bit(16)
            || nextval('pgstream.xid_counter')::bit(24)
            || B'0000';
    FOR i IN 0..19 LOOP
        encoded := encoded || substr(alphabet, substring(bits FROM i * 5 + 1 FOR 5)::integer + 1, 1);
    END LOOP;
    RETURN encoded;
END
$$;

-- The time an id was minted, for humans reading schema_log.
CREATE OR REPLACE FUNCTION pgstream.xid_time(id pgstream.xid)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    alphabet constant text := '0123456789abcdefghijklmnopqrstuv';
    bits     text := '';
BEGIN
    FOR i IN 1..7 LOOP  -- the first 35 bits cover the 32-bit timestamp
        bits := bits || (strpos(alphabet, substr(id, i, 1)) - 1)::bit(5)::text;
    END LOOP;
    RETURN to_timestamp(substring(bits FROM 1 FOR 32)::bit(32)::bigint);
END
$$;

DO $$
BEGIN
    -- A fresh random counter start keeps ids from two databases created in the same second apart.
    IF NOT EXISTS (SELECT FROM pgstream.migrations WHERE version = 1) THEN
        PERFORM setval('pgstream.xid_counter', floor(random() * 16777215)::bigint);
    END IF;
END
$$;

INSERT INTO pgstream.migrations (version, name) VALUES (1, 'schema_and_xid') ON CONFLICT (version) DO NOTHING;
