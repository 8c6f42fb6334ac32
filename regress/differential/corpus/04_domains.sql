-- Domains over bigint, numeric, varchar and varbit; domain arrays; enum arrays with a quoted enum name.
-- ("Enum Type" and "Enum Type"[] are pasted by wal2json as valid JSON strings: no declared difference.)
create type "Enum Type" as enum ('a', 'b "c"');
create domain d_bigint as bigint check (value >= 0);
create domain d_numeric as numeric(5,3);
create domain d_varchar as varchar(20);
create domain d_varbit as varbit(8);
create domain d_float as float8;
create domain d_text_array as text[];
create table domained (
  id d_bigint primary key, n d_numeric, v d_varchar not null default 'dflt', vb d_varbit, f d_float,
  ta d_text_array, ea "Enum Type"[], e "Enum Type", plain int
);
create table domain_pk (k d_varchar primary key, n d_numeric);
-- @@ start decoding
insert into domained values (3, 3.540, 'hello', B'1010', 'NaN', '{"x y",z}', '{a,"b \"c\""}', 'b "c"', 7);
insert into domained values (4, null, 'x', null, 'Infinity', null, null, null, null);
insert into domained values (5, -1.5, 'y', B'1', 1e-10, '{}', '{}', 'a', 0);
update domained set n = 1.125, f = '-Infinity' where id = 3;
update domained set id = 6 where id = 4;
delete from domained where id = 5;
insert into domain_pk values ('k1', 1.5), ('k2', null);
update domain_pk set n = 2 where k = 'k1';
update domain_pk set k = 'k3' where k = 'k2';
delete from domain_pk where k = 'k1';
