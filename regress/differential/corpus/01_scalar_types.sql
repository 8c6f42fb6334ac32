-- Every scalar column type of wal2json-format.md §5, with typmods, in one table with a primary key.
-- @@ expect-difference: bytea-escape
set extra_float_digits = 0;
create table scalars (
  id int4 primary key,
  c_int2 int2, c_int8 int8, c_num numeric, c_num53 numeric(5,3), c_num100 numeric(10,0),
  c_real real, c_float8 float8,
  c_char char(10), c_char1 char, c_varchar varchar(30), c_varchar_nl varchar, c_text text,
  c_bit bit(3), c_varbit varbit(20), c_varbit_nl varbit,
  c_ts timestamp, c_ts3 timestamp(3), c_tstz timestamptz, c_tstz0 timestamptz(0), c_date date,
  c_time time, c_time2 time(2), c_timetz timetz, c_interval interval, c_interval_ds interval day to second(1),
  c_bool bool, c_json json, c_jsonb jsonb, c_tsvector tsvector, c_tsquery tsquery, c_uuid uuid,
  c_inet inet, c_cidr cidr, c_macaddr macaddr, c_money money, c_xml xml, c_oid oid, c_xid xid,
  c_point point, c_box box, c_name name, c_regclass regclass, c_pglsn pg_lsn, c_bytea bytea
);
-- @@ start decoding
insert into scalars values (
  1, -32768, 9223372036854775807, 12345678901234567890.123456789, 3.54, 1234567890,
  1.5, 876.563,
  'foo', 'x', 'bar', 'unbounded', 'some text',
  B'101', B'1011', B'1',
  '2020-01-02 03:04:05.678', '2020-01-02 03:04:05.6789', '2020-01-02 03:04:05.678+02', '2020-06-30 23:59:59.5-03', '2013-11-02',
  '17:30:52', '17:30:52.123', '17:30:52+05:30', '1 year 2 mons 3 days 04:05:06.5', '3 days 04:05:06.25',
  true, '{"a": [1, 2.50, null], "b": "x"}', '{"b": "x", "a": [1, 2.50, null], "c": {"d": true}}',
  'the quick brown fox', 'fat & rat', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', 12.34, '<a href="x">t&amp;</a>', 4294967295, '12345',
  '(1.5,-2)', '((0,0),(1,1))', 'a name', 'scalars', '16/B374D848', '\x00ff10'
);
insert into scalars (id) values (2);
insert into scalars values (
  3, 0, -9223372036854775808, -0.000000001, -99.999, 0,
  -1.5e-7, 1e300,
  'ab ', ' ', '', '', E'tab\there',
  B'000', B'', B'0101010101',
  'infinity', '-infinity', 'infinity', '-infinity', 'infinity',
  '00:00', '24:00:00', '00:00:00-14', '-1 days -00:00:01', '0',
  false, 'null', '"string"', '', 'a & b', '00000000-0000-0000-0000-000000000000',
  '::1', '::ffff:0:0/96', '00:00:00:00:00:00', -92233720368547758.08, '<x/>', 0, '0',
  '(0,0)', '((-1,-1),(1e10,2))', '', '-', '0/0', ''
);
update scalars set c_text = 'updated', c_int2 = c_int2 + 1 where id = 1;
update scalars set c_bool = null, c_jsonb = '[]' where id = 3;
delete from scalars where id = 2;
begin;
insert into scalars (id, c_float8, c_real, c_num) values (4, 3.14159265358979, 0.1, 1e-30);
update scalars set c_float8 = 2.5 where id = 4;
commit;
