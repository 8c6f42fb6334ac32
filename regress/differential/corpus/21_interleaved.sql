-- Concurrent transactions (a second session through dblink) whose changes interleave in the WAL and commit in
-- a different order than they started; a subtransaction of one aborts.
create extension if not exists dblink;
create table inter (id int primary key, who text);
-- @@ start decoding
select dblink_connect('other', format('host=127.0.0.1 port=%s user=postgres dbname=%s', current_setting('port'), current_database()));
begin;
insert into inter values (1, 'main');
select dblink_exec('other', 'begin');
select dblink_exec('other', 'insert into inter values (2, ''other'')');
insert into inter values (3, 'main');
select dblink_exec('other', 'savepoint s');
select dblink_exec('other', 'insert into inter values (4, ''other rolled back'')');
select dblink_exec('other', 'rollback to savepoint s');
select dblink_exec('other', 'insert into inter values (5, ''other'')');
select pg_logical_emit_message(true, 'keep', 'main message');
select dblink_exec('other', 'commit');
update inter set who = 'main updated other row' where id = 2;
commit;
select dblink_exec('other', 'begin');
insert into inter values (6, 'main autocommit while other is open');
select dblink_exec('other', 'delete from inter where id = 1');
select dblink_exec('other', 'create table other_side (a int primary key)');
select dblink_exec('other', 'insert into other_side values (1)');
insert into inter values (7, 'main while other has uncommitted DDL');
select dblink_exec('other', 'commit');
insert into inter values (8, 'main after other committed');
select dblink_disconnect('other');
