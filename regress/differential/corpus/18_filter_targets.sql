-- Tables whose names the filter option sets (filter-tables / add-tables) aim at: wildcards, escaped characters,
-- quotes, dots, commas, spaces, star names, same table name in several schemas.
create schema other;
create schema "sp ace";
create schema "dot.schema";
create schema "*";
create table public.keep (id int primary key);
create table other.keep (id int primary key);
create table other.t2 (id int primary key);
create table public.t2 (id int primary key);
create table public."filter""table" (id int primary key);
create table "sp ace"."t,comma" (id int primary key);
create table "dot.schema"."dot.table" (id int primary key);
create table public."star*" (id int primary key);
create table "*"."*" (id int primary key);
create table "*".plain (id int primary key);
create table public."Keep" (id int primary key);
-- @@ start decoding
begin;
insert into public.keep values (1);
insert into other.keep values (1);
insert into other.t2 values (1);
insert into public.t2 values (1);
insert into public."filter""table" values (1);
insert into "sp ace"."t,comma" values (1);
insert into "dot.schema"."dot.table" values (1);
insert into public."star*" values (1);
insert into "*"."*" values (1);
insert into "*".plain values (1);
insert into public."Keep" values (1);
commit;
update other.keep set id = 2;
delete from public.t2;
truncate public.keep, other.keep, "*"."*", "dot.schema"."dot.table", public."filter""table";
select pg_logical_emit_message(true, 'keep', 'k'), pg_logical_emit_message(true, 'noise', 'n');
