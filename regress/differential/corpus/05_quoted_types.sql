-- Quoted and schema-qualified type names: wal2json 2.5 appends a name starting with '"' raw, which is invalid
-- JSON when the name is schema-qualified or has an embedded quote; pgstream always escapes type names.
-- @@ expect-difference: quoted-type-names
create schema "Type Schema";
create schema lower_schema;
create type "Quoted Type" as enum ('x', 'y');
create type "Type Schema"."Inner" as (a int, b text);
create type "Type Schema".lower_t as enum ('l1', 'l2');
create type lower_schema."Mixed" as range (subtype = float8);
create type "Embedded""Quote" as enum ('e');
create domain "Type Schema"."Dom" as numeric(6,2);
create domain "Quoted Domain" as int;
create type other_visible as enum ('v');
create type lower_schema.plain_enum as enum ('p');
create table typed (
  id int primary key, q "Quoted Type", qa "Quoted Type"[], inner_v "Type Schema"."Inner", lower_v "Type Schema".lower_t,
  lower_a "Type Schema".lower_t[], mixed lower_schema."Mixed", emb "Embedded""Quote", dom "Type Schema"."Dom",
  qdom "Quoted Domain", vis other_visible, plain_q lower_schema.plain_enum
);
create table typed_pk (k "Quoted Type", ka "Quoted Type"[], ks "Type Schema".lower_t, v int,
  primary key (k, ka, ks));
-- @@ start decoding
insert into typed values (1, 'x', '{x,y}', '(1,"a")', 'l1', '{l1,l2}', '[1.5,2)', 'e', 12.5, 7, 'v', 'p');
insert into typed (id) values (2);
update typed set q = 'y', lower_v = 'l2' where id = 1;
update typed set id = 3 where id = 2;
delete from typed where id = 1;
insert into typed_pk values ('x', '{y}', 'l2', 1);
update typed_pk set v = 2;
delete from typed_pk;
