-- NaN/±Infinity, integer extremes, NULLs, every control character, DEL, escapes and non-ASCII text.
create table special (
  id serial primary key, n numeric, f4 float4, f8 float8, i2 int2, i4 int4, i8 int8, o oid,
  b bool, t text, v varchar(100), j json, c char(3)
);
create table chars (code int primary key, ch text, name text);
-- @@ start decoding
insert into special (n, f4, f8) values ('NaN', 'NaN', 'NaN'), ('Infinity', 'Infinity', 'Infinity'),
  ('-Infinity', '-Infinity', '-Infinity'), (0, -0, '-0'), (1e-20, 3.4e38, 1.7976931348623157e308);
insert into special (i2, i4, i8, o) values (32767, 2147483647, 9223372036854775807, 4294967295),
  (-32768, -2147483648, -9223372036854775808, 0);
insert into special (b, t) values (null, 'null'), (true, 'true'), (false, ''), (null, null);
insert into special (t, v, c) values
  (E'quote " backslash \\ slash / bs \b ff \f nl \n cr \r tab \t', E'\u207F \u967F', 'é'),
  ('é 日本 😀 Ω ß', 'naïve café', '日本'),
  (E'\\u0000 is not a NUL', E'\\"', E'\\\\');
insert into special (n) values (('1' || repeat('0', 1000))::numeric), (-('0.' || repeat('0', 300) || '1')::numeric),
  ('1e-20'::numeric(30,25));
insert into special (j) values ('{"k": "v\"q\\w", "n": null, "u": "\u00e9"}'), ('[1e400, -0.0]');
insert into chars select g, chr(g), 'ctrl ' || g from generate_series(1, 31) g;
insert into chars values (127, chr(127), 'DEL'), (128, chr(128), 'U+0080'), (8232, chr(8232), 'LSEP'),
  (65279, chr(65279), 'BOM'), (1114111, chr(1114111), 'max');
insert into chars values (1000, (select string_agg(chr(g), '' order by g) from generate_series(1, 31) g) || chr(127), 'all');
update chars set name = E'renamed\x01\x1f' where code = 10;
delete from chars where code = 9;
update special set n = 'NaN', f8 = '-Infinity' where id = 6;
