-- Arrays (incl. text[] with quotes), ranges, multiranges, enums, composite types, geometric types.
create type mood as enum ('sad', 'ok', 'happy', 'so "so"');
create type pair as (a int, b text);
create table containers (
  id bigint primary key,
  ints int[], texts text[], nested int[][], varchars varchar(5)[], bools bool[], nums numeric(4,1)[],
  r_int int4range, r_num numrange, r_ts tsrange, r_tstz tstzrange, r_date daterange, m_int int4multirange,
  feeling mood, feelings mood[], p pair, ps pair[], pt point, ln line, lseg lseg, pa path, pg polygon, ci circle,
  js jsonb[], uuids uuid[]
);
-- @@ start decoding
insert into containers values (
  1, '{1,2,NULL}', '{"a b","c\"d",NULL,"NULL","",e\\f,"{x}"}', '{{1,2},{3,4}}', '{ab,"c d"}', '{t,f,NULL}', '{1.5,NaN,-2}',
  '[1,10)', '(1.5,2.5]', '[2020-01-01 00:00,2020-01-02 00:00)', '[2020-01-01 00:00+00,infinity)', '[2020-01-01,)',
  '{[1,3),[5,7)}',
  'happy', '{sad,"so \"so\""}', '(1,"x ""y""")', array[(1,'a')::pair, (null, null)::pair], '(1,2)', '{1,-1,0}',
  '[(0,0),(1,1)]', '((0,0),(1,1),(2,0))', '((0,0),(1,0),(0,1))', '<(0,0),5>',
  array['{"a":1}'::jsonb, 'null'::jsonb], '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'
);
insert into containers (id, ints, texts, r_int, feeling) values (2, '{}', '{}', 'empty', 'so "so"');
update containers set feeling = 'ok', texts = array[E'new\nline', E'tab\t', '"'] where id = 1;
update containers set id = 3 where id = 2;
delete from containers where id = 3;
