-- Savepoints (released, rolled back, nested), rolled-back transactions, empty and DDL-only transactions.
create table tx (id int primary key, v text);
-- @@ start decoding
begin;
insert into tx values (1, 'kept');
savepoint s1;
insert into tx values (2, 'rolled back');
rollback to savepoint s1;
savepoint s2;
insert into tx values (3, 'released');
savepoint s3;
update tx set v = 'nested rolled back' where id = 1;
rollback to s3;
release savepoint s2;
insert into tx values (4, 'after');
commit;
begin;
insert into tx values (100, 'never');
rollback;
begin;
savepoint a;
delete from tx where id = 1;
rollback to a;
commit;
begin;
commit;
create table ddl_only (a int);
alter table ddl_only add column b text;
begin;
create index on tx (v);
drop table ddl_only;
commit;
begin;
insert into tx values (5, 'five');
savepoint x;
insert into tx values (6, 'six');
release x;
savepoint y;
delete from tx where id = 5;
commit;
-- more than 64 subtransactions in one transaction (subxid overflow), every third one aborted
do $$ begin
  for i in 1000 .. 1150 loop
    begin
      insert into tx values (i, 'subxact ' || i);
      if i % 3 = 0 then raise exception 'abort this one'; end if;
    exception when others then null;
    end;
  end loop;
end $$;
