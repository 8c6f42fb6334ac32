-- pgstream-transaction-fields-once: xid, timestamp and origin appear on B and C only. Every other record is
-- the wal2json record without those members, in the same order; B and C are unchanged.
\set VERBOSITY terse
SET synchronous_commit = on;

CREATE TABLE plugin_fields_t (id int PRIMARY KEY, v text);
SELECT 'init' FROM pg_create_logical_replication_slot('plugin_fields', 'pgstream');

INSERT INTO plugin_fields_t VALUES (1, 'one'), (2, 'two');
SELECT 'msg' FROM pg_logical_emit_message(false, 'fields', 'non-transactional keeps its null members');
BEGIN;
UPDATE plugin_fields_t SET v = 'deux' WHERE id = 2;
SELECT 'msg' FROM pg_logical_emit_message(true, 'fields', 'transactional');
DELETE FROM plugin_fields_t WHERE id = 1;
TRUNCATE plugin_fields_t;
COMMIT;

CREATE FUNCTION plugin_fields_compare(VARIADIC options text[])
RETURNS TABLE (action text, records bigint, same_without_transaction_fields boolean, carries_xid boolean,
               carries_timestamp boolean)
LANGUAGE sql AS $$
  WITH full_records AS (
    SELECT n, data::jsonb AS record FROM pg_logical_slot_peek_changes('plugin_fields', NULL, NULL,
      VARIADIC ARRAY['format-version', '2'] || options) WITH ORDINALITY AS f(lsn, xid, data, n)),
  once_records AS (
    SELECT n, data::jsonb AS record FROM pg_logical_slot_peek_changes('plugin_fields', NULL, NULL,
      VARIADIC ARRAY['format-version', '2', 'pgstream-transaction-fields-once', '1'] || options)
      WITH ORDINALITY AS o(lsn, xid, data, n))
  SELECT f.record->>'action' || CASE WHEN f.record->>'action' = 'M'
                                     THEN '/' || (f.record->>'transactional') ELSE '' END,
         count(*),
         bool_and(CASE WHEN f.record->>'action' IN ('B', 'C')
                         OR (f.record->>'action' = 'M' AND f.record->>'transactional' = 'false')
                       THEN o.record = f.record
                       ELSE o.record = f.record - 'xid' - 'timestamp' - 'origin' END),
         bool_and(o.record ? 'xid'),
         bool_and(o.record ? 'timestamp')
  FROM full_records f JOIN once_records o USING (n)
  GROUP BY 1 ORDER BY 1
$$;

SELECT * FROM plugin_fields_compare('include-xids', '1', 'include-timestamp', '1', 'include-lsn', '1',
                                    'include-origin', '1');
-- packed, as the shipper reads it: the same records
SELECT count(*) AS records,
       bool_and(NOT (line::jsonb ? 'xid') OR line::jsonb->>'action' IN ('B', 'C')
                OR line::jsonb->>'transactional' = 'false') AS only_b_c_carry_xid
FROM pg_logical_slot_peek_changes('plugin_fields', NULL, NULL, 'format-version', '2', 'include-xids', '1',
       'pgstream-pack-bytes', '65536', 'pgstream-transaction-fields-once', '1') AS p(lsn, xid, data),
     string_to_table(p.data, E'\n') AS line;

-- only with format-version 2 and include-transaction
SELECT data FROM pg_logical_slot_peek_changes('plugin_fields', NULL, NULL, 'format-version', '1',
       'pgstream-transaction-fields-once', '1');
SELECT data FROM pg_logical_slot_peek_changes('plugin_fields', NULL, NULL, 'format-version', '2',
       'include-transaction', '0', 'pgstream-transaction-fields-once', '1');
SELECT data FROM pg_logical_slot_peek_changes('plugin_fields', NULL, NULL, 'format-version', '2',
       'pgstream-transaction-fields-once', 'maybe');

SELECT 'dropped' FROM pg_drop_replication_slot('plugin_fields');
DROP FUNCTION plugin_fields_compare;
DROP TABLE plugin_fields_t;
