-- Option parsing of the pgstream output plugin: wal2json 2.5's names, defaults and error messages,
-- plus numeric-data-types-as-string (wal2json 2.6) and pgstream-pack-bytes.
\set VERBOSITY terse
SET synchronous_commit = on;

CREATE TABLE plugin_options_t (id int PRIMARY KEY, v text);
SELECT 'init' FROM pg_create_logical_replication_slot('plugin_options', 'pgstream');
INSERT INTO plugin_options_t VALUES (1, 'a');

-- unknown option
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'nosuchopt', '1');
-- newer wal2json options that 2.5 does not know stay unknown, except numeric-data-types-as-string
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'partition-root', '1');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'numeric-data-types-as-string', '1', 'include-transaction', '0');
-- deprecated option
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'include-unchanged-toast', '1');

-- every boolean option rejects a bad value and accepts parse_bool spellings
-- (the SQL API cannot pass a missing value; the walsender can, and it means true)
DO $$
DECLARE
  opt text;
  val text;
  n int;
BEGIN
  FOREACH opt IN ARRAY ARRAY['include-transaction', 'include-xids', 'include-timestamp', 'include-origin',
      'include-lsn', 'include-schemas', 'include-types', 'include-typmod', 'include-type-oids',
      'include-domain-data-type', 'include-column-positions', 'include-not-null', 'include-default',
      'include-pk', 'numeric-data-types-as-string', 'pretty-print', 'write-in-chunks'] LOOP
    BEGIN
      PERFORM data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, opt, 'maybe');
      RAISE NOTICE '% accepted a bad value', opt;
    EXCEPTION WHEN OTHERS THEN
      RAISE NOTICE '%', SQLERRM;
    END;
    FOREACH val IN ARRAY ARRAY['t', 'false', 'yes', 'of', 'on', '1', '0'] LOOP
      SELECT count(*) INTO n FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, opt, val);
    END LOOP;
  END LOOP;
END
$$;

-- format-version
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '3');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '0');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '-1');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', 'two');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '1.5');
-- a later occurrence wins
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'format-version', '1');

-- actions
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'actions', 'insert, foo');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'actions', 'INSERT');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'actions', 'insert delete');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'actions', 'insert,,delete');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'actions', ' delete , insert ');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'actions', '');

-- table lists: schema.table items, unescaped separators and spaces only
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'filter-tables', 'nodot');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'filter-tables', 'public.a b');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'filter-tables', ',public.a');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'add-tables', 'public.a,');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'add-tables', 'public\.a');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'add-tables', ' public.plugin_options_t ,  public.x ');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'add-tables', '');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'filter-tables', '*.plugin_options_t');

-- message prefix lists and origins
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'filter-msg-prefixes', 'a,,b');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'add-msg-prefixes', 'a b');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'filter-origins', '16 27');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'filter-origins', '16, 27, 123');

-- pgstream-pack-bytes: a byte count, format-version 2 only
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'pgstream-pack-bytes', 'lots');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'pgstream-pack-bytes', '-1');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'pgstream-pack-bytes', '100');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '1', 'pgstream-pack-bytes', '100');
SELECT data FROM pg_logical_slot_peek_changes('plugin_options', NULL, NULL, 'format-version', '2', 'pgstream-pack-bytes', '0');

SELECT 'stop' FROM pg_drop_replication_slot('plugin_options');
DROP TABLE plugin_options_t;
