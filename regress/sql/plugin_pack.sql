-- pgstream-pack-bytes: several format-version 2 records per replication message, separated by '\n'.
-- Split on newlines, the packed messages give back exactly the unpacked records, in order.
\set VERBOSITY terse
SET synchronous_commit = on;

CREATE TABLE plugin_pack_t (id int PRIMARY KEY, v text);
SELECT 'init' FROM pg_create_logical_replication_slot('plugin_pack', 'pgstream');

INSERT INTO plugin_pack_t VALUES (1, 'one');
INSERT INTO plugin_pack_t SELECT i, repeat('x', i) FROM generate_series(2, 60) i;
SELECT 'msg' FROM pg_logical_emit_message(false, 'pack', 'non-transactional messages are sent at once');
BEGIN;
UPDATE plugin_pack_t SET v = 'two' WHERE id = 2;
SELECT 'msg' FROM pg_logical_emit_message(true, 'pack', E'multi\nline content stays escaped');
DELETE FROM plugin_pack_t WHERE id > 50;
TRUNCATE plugin_pack_t;
COMMIT;

CREATE FUNCTION plugin_pack_compare(pack_bytes int, VARIADIC options text[] DEFAULT '{}')
RETURNS TABLE (records bigint, messages bigint, identical boolean, multi_record_messages_within_budget boolean,
               reported_as_first_record boolean)
LANGUAGE sql AS $$
  WITH unpacked AS (
    SELECT n, lsn, xid, data FROM pg_logical_slot_peek_changes('plugin_pack', NULL, NULL,
      VARIADIC ARRAY['format-version', '2'] || options) WITH ORDINALITY AS u(lsn, xid, data, n)),
  messages AS (
    SELECT m, lsn, xid, data FROM pg_logical_slot_peek_changes('plugin_pack', NULL, NULL,
      VARIADIC ARRAY['format-version', '2', 'pgstream-pack-bytes', pack_bytes::text] || options)
      WITH ORDINALITY AS p(lsn, xid, data, m)),
  lines AS (
    SELECT row_number() OVER (ORDER BY m, k) AS n, m, k, line
    FROM messages, string_to_table(messages.data, E'\n') WITH ORDINALITY AS l(line, k))
  SELECT (SELECT count(*) FROM unpacked),
         (SELECT count(*) FROM messages),
         (SELECT count(*) FROM unpacked FULL JOIN lines USING (n)
           WHERE unpacked.data IS DISTINCT FROM lines.line) = 0,
         (SELECT coalesce(bool_and(octet_length(data) <= pack_bytes), true) FROM messages
           WHERE position(E'\n' IN data) > 0),
         -- a message has the lsn and xid its first record has when sent alone
         (SELECT bool_and(messages.lsn = unpacked.lsn AND messages.xid IS NOT DISTINCT FROM unpacked.xid)
          FROM messages JOIN lines ON lines.m = messages.m AND lines.k = 1 JOIN unpacked USING (n))
$$;

-- small budgets pack a few records per message; no multi-record message exceeds the budget
SELECT * FROM plugin_pack_compare(200);
SELECT * FROM plugin_pack_compare(1000);
-- a budget smaller than any record sends one record per message, as without packing
SELECT * FROM plugin_pack_compare(1);
-- a large budget sends one message per transaction (and one per non-transactional message)
SELECT * FROM plugin_pack_compare(1000000);
SELECT * FROM plugin_pack_compare(1000000, 'include-transaction', '0', 'include-types', '0');
SELECT * FROM plugin_pack_compare(1000000, 'include-xids', '1', 'include-lsn', '1', 'filter-tables', '*.*');

-- what a packed message looks like
SELECT data FROM pg_logical_slot_peek_changes('plugin_pack', NULL, NULL, 'format-version', '2',
  'pgstream-pack-bytes', '100000', 'include-types', '0', 'actions', 'update, delete, truncate')
WHERE data LIKE '%"U"%' OR data LIKE '%"M"%';

-- every line of a packed message is valid JSON
SELECT count(*) AS records, count(line::json) AS json_records
FROM pg_logical_slot_peek_changes('plugin_pack', NULL, NULL, 'format-version', '2', 'pgstream-pack-bytes', '300'),
     string_to_table(data, E'\n') AS line;

SELECT 'stop' FROM pg_drop_replication_slot('plugin_pack');
DROP FUNCTION plugin_pack_compare(int, text[]);
DROP TABLE plugin_pack_t;
