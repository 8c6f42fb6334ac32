-- A SQL_ASCII database: text bytes are not validated, so invalid UTF-8 passes through both plugins raw.
-- @@ database: encoding 'SQL_ASCII' lc_collate 'C' lc_ctype 'C'
-- @@ client-encoding: SQL_ASCII
create table raw_bytes (id int primary key, t text, "col\é" text);
-- @@ start decoding
insert into raw_bytes values (1, convert_from('\xff41c3'::bytea, 'SQL_ASCII'), 'x');
insert into raw_bytes values (2, E'\x7f\x01 plain', convert_from('\xe9'::bytea, 'SQL_ASCII'));
update raw_bytes set t = 'changed' where id = 1;
select pg_logical_emit_message(false, convert_from('\xfe'::bytea, 'SQL_ASCII'), '\xff00ff'::bytea);
