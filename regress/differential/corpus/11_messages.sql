-- Logical decoding messages: transactional and not, bytea content, quoted/odd prefixes, rollbacks, ordering.
-- wal2json 2.5 starts a v1 non-transactional message document with "[," after a transaction with several changes.
-- @@ expect-difference: v1-message-comma
create table m (id int primary key, v text);
-- @@ start decoding
select pg_logical_emit_message(false, 'wal2json', 'non-transactional first');
select pg_logical_emit_message(true, 'wal2json', 'transactional alone');
begin;
insert into m values (1, 'a');
select pg_logical_emit_message(true, 'keep', 'in txn');
select pg_logical_emit_message(false, 'noise', 'nontx inside txn');
insert into m values (2, 'b');
select pg_logical_emit_message(true, 'pre"fix', E'content \u0001 "q" \\ \n');
commit;
select pg_logical_emit_message(false, 'keep', 'after a two-change txn');
begin;
select pg_logical_emit_message(true, 'noise', 'rolled back');
select pg_logical_emit_message(false, 'noise', 'survives rollback');
rollback;
select pg_logical_emit_message(true, 'bytes', '\x00ff41'::bytea);
select pg_logical_emit_message(true, 'bytes', '\x41424300444546'::bytea);
select pg_logical_emit_message(false, 'bytes', E'\\x68c3a96c6c6f'::bytea);
select pg_logical_emit_message(true, '', '');
select pg_logical_emit_message(false, ' spaced prefix ', 'é 日本');
select pg_logical_emit_message(true, 'keep,comma', 'x');
select pg_logical_emit_message(true, 'back\slash', 'backslash prefix');
select pg_logical_emit_message(true, 'KEEP', 'upper-case prefix');
begin;
insert into m values (3, 'c');
insert into m values (4, 'd');
insert into m values (5, 'e');
commit;
select pg_logical_emit_message(false, 'wal2json', 'last, not flushed until a checkpoint');
