-- Partitioned tables (leaf names are reported), multi-level partitions, unlogged and temp tables (not decoded).
create table measurements (id int, logdate date, v text, primary key (id, logdate)) partition by range (logdate);
create table measurements_2020 partition of measurements for values from ('2020-01-01') to ('2021-01-01');
create table measurements_2021 partition of measurements for values from ('2021-01-01') to ('2022-01-01')
  partition by list (id);
create table measurements_2021_small partition of measurements_2021 for values in (1, 2, 3);
create table measurements_default partition of measurements default;
create unlogged table scratch (id int primary key, v text);
create table logged (id int primary key);
-- @@ start decoding
insert into measurements values (1, '2020-05-01', 'a'), (2, '2021-05-01', 'b'), (9, '2030-01-01', 'c');
update measurements set v = 'moved', logdate = '2021-02-02' where id = 1;
update measurements set v = 'in place' where id = 2;
delete from measurements where id = 9;
truncate measurements;
insert into scratch values (1, 'unlogged');
update scratch set v = 'x';
create temp table tmp (id int primary key, v text);
insert into tmp values (1, 'temp');
begin;
insert into tmp values (2, 'temp');
insert into scratch values (2, 'unlogged');
insert into logged values (1);
commit;
begin;
insert into tmp values (3, 'temp only');
delete from scratch;
commit;
-- table rewrites and materialized views write WAL that must not surface as changes
create materialized view mv as select id, v from measurements;
insert into logged values (2);
refresh materialized view mv;
vacuum full logged;
cluster measurements_2020 using measurements_2020_pkey;
insert into logged values (3);
alter table logged alter column id type bigint;
insert into logged values (4);
