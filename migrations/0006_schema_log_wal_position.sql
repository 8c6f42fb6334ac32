-- 0006: the WAL position of each schema version.
--
-- A version is in force for exactly the row changes written after it: the default below is evaluated when
-- pgstream.log_schema_changes() inserts the version, inside the DDL's transaction and after the per-schema version
-- lock, so
--   * every row change the DDL's table lock waited for (written under the previous version) has a smaller LSN, and
--   * every row change that depends on the new version (written after the DDL, in its transaction or in one that
--     waited for its lock) has a larger one.
-- The shipper translates a row at LSN L with the newest version whose wal_position is below L, whatever position
-- its stream started from (a restart, a second slot, a replay). Versions written before this migration keep a NULL
-- position: they are older than every positioned version.
-- No default on ADD COLUMN: a volatile default would stamp the existing rows with today's position.
-- Since 0012 the table is pgstream.schema_log_entries and schema_log a view: applied again, this file leaves them.
DO $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'pgstream.schema_log'::regclass) = 'r' THEN
        ALTER TABLE pgstream.schema_log ADD COLUMN IF NOT EXISTS wal_position pg_lsn;
        ALTER TABLE pgstream.schema_log ALTER COLUMN wal_position SET DEFAULT pg_catalog.pg_current_wal_insert_lsn();
    END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (6, 'schema_log_wal_position') ON CONFLICT (version) DO NOTHING;
