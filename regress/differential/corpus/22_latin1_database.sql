-- A LATIN1 database: output functions and the JSON escaping work on server-encoded bytes (the SQL API converts
-- to the client's UTF8 afterwards, identically for both plugins).
-- @@ database: encoding 'LATIN1' lc_collate 'C' lc_ctype 'C'
create table "tâble" ("cölumn" text primary key, n numeric, c char(4));
-- @@ start decoding
insert into "tâble" values ('é à ç ÿ', 1.5, 'ñ');
insert into "tâble" values (E'ctrl \x01 and high ' || chr(255), null, 'ü');
update "tâble" set n = 2 where "cölumn" = 'é à ç ÿ';
select pg_logical_emit_message(true, 'préfixe', 'contenu é');
delete from "tâble" where n is null;
