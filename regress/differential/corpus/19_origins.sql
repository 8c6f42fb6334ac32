-- Changes replayed under a replication origin (include-origin prints its id, filter-origins drops them).
create table replicated (id int primary key, v text);
select pg_replication_origin_create('upstream_one');
select pg_replication_origin_create('upstream_two');
-- @@ start decoding
insert into replicated values (1, 'local');
select pg_replication_origin_session_setup('upstream_one');
insert into replicated values (2, 'from origin 1');
select pg_logical_emit_message(true, 'keep', 'from origin 1');
select pg_logical_emit_message(false, 'keep', 'nontx from origin 1');
select pg_replication_origin_session_reset();
select pg_replication_origin_session_setup('upstream_two');
begin;
select pg_replication_origin_xact_setup('0/AABBCCDD', '2020-01-01 00:00:00+00');
update replicated set v = 'from origin 2' where id = 1;
commit;
select pg_replication_origin_session_reset();
delete from replicated where id = 2;
