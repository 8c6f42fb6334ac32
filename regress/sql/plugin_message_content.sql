-- pgstream-lossless-message-content: a logical message's content that a JSON string cannot carry as is (a NUL byte,
-- bytes that are not valid UTF-8) is written whole as base64 with "content_encoding":"base64"; text content is
-- written as before. Off (the default), the content is wal2json's: cut at the first NUL.
\set VERBOSITY terse
SET synchronous_commit = on;
SELECT 'init' FROM pg_create_logical_replication_slot('plugin_message', 'pgstream');

SELECT 'msg' FROM pg_logical_emit_message(true, 'p', '\x410042'::bytea);        -- A, NUL, B
SELECT 'msg' FROM pg_logical_emit_message(false, 'p', '\x41ff42'::bytea);       -- not UTF-8
SELECT 'msg' FROM pg_logical_emit_message(true, 'p', 'plain text, "quoted" ünï');
SELECT 'msg' FROM pg_logical_emit_message(true, 'p', ''::bytea);

-- default: wal2json's content, cut at the NUL; the invalid byte passes through as is (the output is not UTF-8)
SELECT encode(data, 'escape') AS record
FROM pg_logical_slot_peek_binary_changes('plugin_message', NULL, NULL, 'format-version', '2')
WHERE position('"action":"M"'::bytea IN data) > 0;

-- lossless, format 2: every byte comes back
SELECT data::jsonb ->> 'content' AS content, data::jsonb ->> 'content_encoding' AS encoding,
       CASE WHEN data::jsonb ->> 'content_encoding' = 'base64' THEN decode(data::jsonb ->> 'content', 'base64')
            ELSE convert_to(data::jsonb ->> 'content', 'UTF8') END AS bytes
FROM pg_logical_slot_peek_changes('plugin_message', NULL, NULL, 'format-version', '2',
                                  'pgstream-lossless-message-content', '1')
WHERE data::jsonb ->> 'action' = 'M';

-- lossless, format 1 (pretty-printed too)
SELECT data::jsonb -> 'change' -> 0 ->> 'content' AS content, data::jsonb -> 'change' -> 0 ->> 'content_encoding' AS encoding
FROM pg_logical_slot_peek_changes('plugin_message', NULL, NULL, 'pgstream-lossless-message-content', '1')
WHERE data::jsonb -> 'change' -> 0 ->> 'kind' = 'message';
SELECT data FROM pg_logical_slot_peek_changes('plugin_message', NULL, NULL, 'pretty-print', '1',
                                              'pgstream-lossless-message-content', '1')
WHERE data LIKE '%\x41ff42%' OR data LIKE '%QQBC%';

SELECT 'dropped' FROM pg_drop_replication_slot('plugin_message');
