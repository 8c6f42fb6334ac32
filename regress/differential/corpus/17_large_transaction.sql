-- A few thousand changes in one transaction (spills to disk: logical_decoding_work_mem is 64kB while peeking),
-- then a large update and delete.
create table big (id int primary key, a text, b numeric, c timestamptz, d bool, e jsonb, f text[]);
-- @@ start decoding
insert into big select g, 'row ' || g, g * 1.5, '2020-01-01 00:00:00+00'::timestamptz + g * interval '1 minute',
  g % 2 = 0, jsonb_build_object('g', g), array['x', g::text] from generate_series(1, 2000) g;
begin;
update big set a = a || ' updated', d = not d where id % 3 = 0;
delete from big where id % 7 = 0;
select pg_logical_emit_message(true, 'wal2json', 'inside the big one');
insert into big (id, a) select g, 'late' from generate_series(2001, 2300) g;
commit;
