-- 0005: the event triggers, and who may call what.

-- Event triggers are not in any schema; dropping and re-creating keeps this file idempotent.
DROP EVENT TRIGGER IF EXISTS pgstream_log_schema_ddl;
DROP EVENT TRIGGER IF EXISTS pgstream_log_schema_drop;
CREATE EVENT TRIGGER pgstream_log_schema_ddl ON ddl_command_end EXECUTE FUNCTION pgstream.log_schema();
CREATE EVENT TRIGGER pgstream_log_schema_drop ON sql_drop EXECUTE FUNCTION pgstream.log_schema();

-- Nothing in pgstream is for PUBLIC. The shipper's role needs: GRANT USAGE ON SCHEMA pgstream, SELECT and
-- UPDATE (acked) ON pgstream.schema_log, SELECT ON pgstream.table_ids (see docs/schema-tracking.md).
REVOKE ALL ON ALL TABLES IN SCHEMA pgstream FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA pgstream FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (5, 'event_triggers') ON CONFLICT (version) DO NOTHING;
