-- Quoted identifiers: schema/table/column names with quotes, spaces, dots, backslashes, non-ASCII and controls.
create schema "test ""schema";
create schema "dot.schema";
create table "test ""schema"."table with ""quotes""" ("col""quotes" int primary key, "col space" text, "col.dot" text,
  "Ünïcødé" text, "back\slash" text, "tab	name" text, "UPPER" int);
create table "dot.schema"."dot.table" ("a,b" int primary key, "{x}" text);
create table public."Mixed Case" ("Id" int primary key, "Value" text);
-- @@ start decoding
insert into "test ""schema"."table with ""quotes""" values (1, 'a', 'b', 'c', 'd', 'e', 1);
update "test ""schema"."table with ""quotes""" set "col space" = 'z' where "col""quotes" = 1;
update "test ""schema"."table with ""quotes""" set "col""quotes" = 2;
delete from "test ""schema"."table with ""quotes""";
insert into "dot.schema"."dot.table" values (1, '{}');
delete from "dot.schema"."dot.table";
insert into public."Mixed Case" values (1, 'v');
update public."Mixed Case" set "Value" = null;
