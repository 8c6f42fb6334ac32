-- Metadata follows schema changes at the exact change being decoded (historic catalog snapshots and
-- relcache invalidations), between and inside transactions, although pgstream caches it per relation.
\set VERBOSITY terse
SET synchronous_commit = on;

CREATE TABLE plugin_sc (id int PRIMARY KEY, a int DEFAULT 5, b text);
CREATE TYPE plugin_sc_enum AS ENUM ('x', 'y');
CREATE TABLE plugin_sc_typed (id int PRIMARY KEY, e plugin_sc_enum, n int);
CREATE SEQUENCE plugin_sc_seq;

SELECT 'init' FROM pg_create_logical_replication_slot('plugin_sc', 'pgstream');

INSERT INTO plugin_sc VALUES (1, 1, 'a');
ALTER TABLE plugin_sc RENAME COLUMN a TO aa;
INSERT INTO plugin_sc VALUES (2, 2, 'b');
BEGIN;
INSERT INTO plugin_sc VALUES (3, 3, 'c');
ALTER TABLE plugin_sc ADD COLUMN c int DEFAULT 7 NOT NULL;
INSERT INTO plugin_sc VALUES (4, 4, 'd', 4);
ALTER TABLE plugin_sc DROP COLUMN b;
INSERT INTO plugin_sc VALUES (5, 5, 5);
ALTER TABLE plugin_sc ALTER COLUMN aa SET DEFAULT 99;
INSERT INTO plugin_sc (id) VALUES (6);
ALTER TABLE plugin_sc RENAME COLUMN aa TO aaa;
UPDATE plugin_sc SET aaa = 0 WHERE id = 1;
COMMIT;
ALTER TABLE plugin_sc RENAME TO plugin_sc_renamed;
INSERT INTO plugin_sc_renamed (id) VALUES (7);
ALTER TABLE plugin_sc_renamed REPLICA IDENTITY FULL;
UPDATE plugin_sc_renamed SET aaa = 1 WHERE id = 7;
ALTER TABLE plugin_sc_renamed REPLICA IDENTITY DEFAULT;
ALTER TABLE plugin_sc_renamed DROP CONSTRAINT plugin_sc_pkey;
UPDATE plugin_sc_renamed SET aaa = 2 WHERE id = 7;
ALTER TABLE plugin_sc_renamed ADD PRIMARY KEY (id, aaa);
UPDATE plugin_sc_renamed SET aaa = 3 WHERE id = 6;
INSERT INTO plugin_sc_typed VALUES (1, 'x', 1);
ALTER TYPE plugin_sc_enum RENAME TO plugin_sc_enum2;
ALTER TABLE plugin_sc_typed ALTER COLUMN n TYPE numeric(6,2);
INSERT INTO plugin_sc_typed VALUES (2, 'y', 2);
ALTER TABLE plugin_sc_typed ALTER COLUMN n SET DEFAULT nextval('plugin_sc_seq');
INSERT INTO plugin_sc_typed (id) VALUES (3);
ALTER SEQUENCE plugin_sc_seq RENAME TO plugin_sc_seq2;
INSERT INTO plugin_sc_typed (id) VALUES (4);

SELECT data FROM pg_logical_slot_peek_changes('plugin_sc', NULL, NULL, 'format-version', '2',
  'include-transaction', '0', 'include-pk', '1', 'include-default', '1', 'include-column-positions', '1',
  'include-not-null', '1');
SELECT data FROM pg_logical_slot_peek_changes('plugin_sc', NULL, NULL, 'format-version', '1',
  'include-pk', '1', 'include-default', '1', 'include-column-positions', '1', 'include-typmod', '0')
WHERE data <> '{"change":[]}';
-- the same session decodes again with other options: nothing cached from the previous call leaks in
SELECT data FROM pg_logical_slot_peek_changes('plugin_sc', NULL, NULL, 'format-version', '2',
  'include-transaction', '0', 'include-types', '0', 'add-tables', 'public.plugin_sc_typed');

SELECT 'stop' FROM pg_drop_replication_slot('plugin_sc');
DROP TABLE plugin_sc_renamed, plugin_sc_typed;
DROP TYPE plugin_sc_enum2;
DROP SEQUENCE plugin_sc_seq2;
