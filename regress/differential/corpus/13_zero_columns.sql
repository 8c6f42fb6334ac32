-- Tables with no columns (or only dropped columns), and with dropped columns in between.
create table zero ();
create table dropped_all (a int);
alter table dropped_all drop column a;
create table holes (a int, b int, c int primary key, d text);
alter table holes drop column b;
alter table zero replica identity full;
-- @@ start decoding
insert into zero default values;
insert into zero default values;
delete from zero;
insert into dropped_all default values;
insert into holes values (1, 2, 'd');
update holes set d = 'e';
delete from holes;
truncate zero;
