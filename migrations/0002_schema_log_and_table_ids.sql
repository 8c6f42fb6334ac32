-- 0002: the schema log and the stable table ids.

-- One row per version of a schema's description. Rows are written by the event triggers inside the DDL's own
-- transaction, so the logical decoding stream carries each row at the position of the DDL, before any row change
-- that depends on it. The shipper acknowledges a version (acked = true) once it has seen it in the stream.
-- Column names and types are those of the Go pgstream (v0.x) so its consumers read our rows unchanged.
CREATE TABLE IF NOT EXISTS pgstream.schema_log (
    id          pgstream.xid PRIMARY KEY DEFAULT pgstream.xid(),
    version     bigint      NOT NULL,
    schema_name text        NOT NULL,
    schema      jsonb       NOT NULL,
    created_at  timestamp   NOT NULL DEFAULT now(),
    acked       boolean     NOT NULL DEFAULT false
);

-- Every version repeats the whole schema; lz4 (where the server has it) compresses and decompresses several times
-- faster than the default pglz, which is most of the cost of logging DDL in a schema with many tables.
-- Since 0012 the table is pgstream.schema_log_entries and schema_log a view: applied again, this file leaves them.
DO $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'pgstream.schema_log'::regclass) <> 'r' THEN
        RETURN;
    END IF;
    CREATE UNIQUE INDEX IF NOT EXISTS schema_log_version_uniq ON pgstream.schema_log (schema_name, version);
    CREATE INDEX IF NOT EXISTS schema_log_name_acked ON pgstream.schema_log (schema_name, acked, id);
    BEGIN
        ALTER TABLE pgstream.schema_log ALTER COLUMN schema SET COMPRESSION lz4;
    EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
        NULL;
    END;
END
$$;

-- Stable table ids. An oid can be reused by a new table after a DROP, and it says nothing across dump/restore; an id
-- here is minted once per table and survives RENAME, SET SCHEMA and rewrites. schema_name is the schema the table was
-- last logged in: it is how a SET SCHEMA or a schema rename finds the schema the table left.
CREATE TABLE IF NOT EXISTS pgstream.table_ids (
    id          pgstream.xid PRIMARY KEY DEFAULT pgstream.xid(),
    oid         oid  NOT NULL UNIQUE,
    schema_name text
);

INSERT INTO pgstream.migrations (version, name) VALUES (2, 'schema_log_and_table_ids') ON CONFLICT (version) DO NOTHING;
