-- TOAST: external uncompressed and compressed values, updates changing and not changing them, deletes,
-- @@ expect-difference: bytea-escape
-- and REPLICA IDENTITY FULL carrying toasted old values.
create table toasted (id serial primary key, rand1 float8 default random(), small text, big_plain text,
  big_compressed text, big_bytea bytea);
alter table toasted alter column big_plain set storage external;
alter table toasted alter column big_bytea set storage external;
create table toasted_full (id int primary key, big text);
alter table toasted_full replica identity full;
alter table toasted_full alter column big set storage external;
-- @@ start decoding
insert into toasted (rand1, small, big_plain, big_compressed, big_bytea)
  select 1.5, 's', string_agg(md5(g::text), ''), repeat('compressible ', 10000),
         decode(string_agg(md5(g::text), ''), 'hex') from generate_series(1, 400) g;
insert into toasted (rand1, small, big_plain, big_compressed)
  values (2.5, 'inline', repeat('x', 100), repeat('y', 100));
update toasted set rand1 = 123.456 where id = 1;
update toasted set big_plain = big_plain || 'tail' where id = 1;
update toasted set big_compressed = 'now small', small = 'changed' where id = 1;
update toasted set id = 3 where id = 1;
delete from toasted where id = 3;
insert into toasted_full select 1, string_agg(md5(g::text), '') from generate_series(1, 300) g;
update toasted_full set id = 2;
delete from toasted_full;
