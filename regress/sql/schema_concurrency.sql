-- Schema tracking: concurrent DDL on one schema is versioned in commit order, each version building on the last
-- (a second session through dblink).
CREATE EXTENSION IF NOT EXISTS pgstream;
\set SHOW_CONTEXT never
\i regress/include/schema_helpers.sql
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE SCHEMA conc;
CREATE TABLE conc.a (id int);
CREATE TABLE conc.b (id int);
SELECT dblink_connect('other', format('dbname=%s port=%s host=%s', current_database(), current_setting('port'),
                                      split_part(current_setting('unix_socket_directories'), ',', 1)));

-- this session alters conc.a and keeps its transaction open
BEGIN;
ALTER TABLE conc.a ADD COLUMN from_first int;
-- the other session alters conc.b: its logging waits for this transaction
SELECT dblink_send_query('other', 'ALTER TABLE conc.b ADD COLUMN from_second int');
SELECT pg_sleep(0.3);
SELECT dblink_is_busy('other') AS other_session_waits;
COMMIT;
SELECT * FROM dblink_get_result('other') AS r(status text);
SELECT * FROM dblink_get_result('other') AS r(status text);

-- both changes are in the latest version: the second session composed its version from the first one's
SELECT * FROM pg_temp.show('conc');
SELECT * FROM pg_temp.versions();
SELECT * FROM pg_temp.check_log();

-- under REPEATABLE READ, a version committed after the snapshot was taken is detected as a serialization failure
-- instead of being overwritten with a stale composition
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) >= 0 AS snapshot_taken FROM conc.a;
SELECT dblink_exec('other', 'ALTER TABLE conc.b ADD COLUMN meanwhile int');
ALTER TABLE conc.a ADD COLUMN too_late int;
ROLLBACK;
SELECT * FROM pg_temp.show('conc');
SELECT * FROM pg_temp.check_log();

SELECT dblink_disconnect('other');
SET client_min_messages = warning;
DROP SCHEMA conc CASCADE;
DROP EXTENSION dblink;
DROP EXTENSION pgstream;
