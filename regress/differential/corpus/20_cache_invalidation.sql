-- Catalog changes that must reach any per-relation cache while decoding: renamed types, schemas, tables and
-- domains, enum values added, primary keys added/dropped, identity and defaults and nullability changed,
-- a table dropped and recreated under the same name, a table moved to another schema.
create schema sch_a;
create type color as enum ('red', 'green');
create type pt2 as (x int, y int);
create domain positive as int check (value > 0);
create table sch_a.cached (id int primary key, c color, p pt2, d positive default 1, note text default 'one');
create table nopk_later (id int not null, v text);
create table recreated (id int primary key, v text);
-- @@ start decoding
insert into sch_a.cached values (1, 'red', '(1,2)', 5, 'a');
alter type color rename to colour;
insert into sch_a.cached values (2, 'green', '(3,4)', 6, 'b');
alter type colour add value 'blue';
alter type pt2 rename attribute y to why;
alter type pt2 rename to point2;
insert into sch_a.cached values (3, 'blue', '(5,6)', 7, 'c');
alter domain positive rename to strictly_positive;
alter schema sch_a rename to sch_b;
insert into sch_b.cached values (4, 'red', '(7,8)', 8, 'd');
alter table sch_b.cached rename to cache_renamed;
alter table sch_b.cache_renamed alter column note set default 'two', alter column note set not null;
insert into sch_b.cache_renamed (id, c) values (5, 'green');
alter table sch_b.cache_renamed set schema public;
update public.cache_renamed set note = 'moved' where id = 1;
alter table public.cache_renamed drop constraint cached_pkey;
update public.cache_renamed set note = 'no pk' where id = 2;
alter table public.cache_renamed add primary key (id, c);
update public.cache_renamed set note = 'two-column pk' where id = 3;
delete from public.cache_renamed where id = 4;
insert into nopk_later values (1, 'a');
update nopk_later set v = 'dropped: no identity';
alter table nopk_later add primary key (id);
update nopk_later set v = 'pk now';
alter table nopk_later replica identity full;
update nopk_later set v = 'full now';
delete from nopk_later;
insert into recreated values (1, 'old');
drop table recreated;
create table recreated (id bigint primary key, v varchar(5), extra bool default true);
insert into recreated values (1, 'new');
begin;
alter type colour rename to hue;
insert into public.cache_renamed values (6, 'red', '(9,9)', 9, 'in txn');
alter table public.cache_renamed rename column note to remark;
update public.cache_renamed set remark = 'renamed in txn' where id = 6;
commit;
