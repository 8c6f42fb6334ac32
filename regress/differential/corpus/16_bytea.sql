-- bytea: empty, NUL bytes, high bytes, large compressible value; under bytea_output=escape pgstream still prints
-- hex (wal2json 2.5 corrupts the value and can read past its end, issue #301).
-- @@ expect-difference: bytea-escape
create table bin (id int primary key, b bytea, note text);
-- @@ start decoding
insert into bin values (1, '\x00ff10', 'hex'), (2, '', 'empty'), (3, null, 'null'),
  (4, 'plain ascii \\ backslash', 'escape input'), (5, decode(repeat('00ff7f80', 2300), 'hex'), '9 KB');
update bin set b = '\x01' where id = 1;
update bin set id = 6 where id = 2;
delete from bin where id = 4;
