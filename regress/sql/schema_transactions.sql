-- Schema tracking: versions are written inside the DDL's transaction.
CREATE EXTENSION IF NOT EXISTS pgstream;
\set SHOW_CONTEXT never
\i regress/include/schema_helpers.sql
CREATE SCHEMA txn;
CREATE TABLE txn.a (id int PRIMARY KEY);
SELECT * FROM pg_temp.versions();

-- several DDL statements in one transaction: one version per statement, in statement order
BEGIN;
ALTER TABLE txn.a ADD COLUMN b text;
CREATE TABLE txn.c (id int);
ALTER TABLE txn.a RENAME COLUMN b TO bee;
CREATE INDEX a_bee ON txn.a (bee);
COMMIT;
SELECT version, (SELECT string_agg(t ->> 'name', ',') FROM jsonb_array_elements(schema -> 'tables') AS t) AS tables,
       schema -> 'tables' -> 0 -> 'columns' -> 1 ->> 'name' AS second_column_of_a
FROM pgstream.schema_log WHERE schema_name = 'txn' ORDER BY version;

-- a rolled-back transaction leaves no version behind
BEGIN;
ALTER TABLE txn.a ADD COLUMN rolled_back int;
CREATE TABLE txn.never (id int);
ROLLBACK;
SELECT * FROM pg_temp.versions();
SELECT * FROM pg_temp.show('txn');

-- a rolled-back savepoint takes its versions with it; the rest of the transaction keeps its own
BEGIN;
ALTER TABLE txn.c ADD COLUMN kept int;
SAVEPOINT s;
ALTER TABLE txn.c ADD COLUMN undone int;
ROLLBACK TO SAVEPOINT s;
ALTER TABLE txn.c ADD COLUMN also_kept int;
COMMIT;
SELECT * FROM pg_temp.versions();
SELECT * FROM pg_temp.show('txn') WHERE show LIKE '% c(%';

-- a failing DDL statement logs nothing
ALTER TABLE txn.c ADD COLUMN kept int;
SELECT * FROM pg_temp.versions();

-- DDL under REPEATABLE READ and SERIALIZABLE is logged the same way
BEGIN ISOLATION LEVEL REPEATABLE READ;
ALTER TABLE txn.c ADD COLUMN rr int;
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
ALTER TABLE txn.c ADD COLUMN ser int;
COMMIT;
SELECT * FROM pg_temp.show('txn') WHERE show LIKE '% c(%';
SELECT * FROM pg_temp.versions();
SELECT * FROM pg_temp.check_log();

SET client_min_messages = warning;
DROP SCHEMA txn CASCADE;
DROP EXTENSION pgstream;
