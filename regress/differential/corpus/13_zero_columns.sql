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
-- a wide table: 400 columns of mixed types
do $$ begin
  execute 'create table wide (id int primary key, '
    || (select string_agg(format('c%s %s', g, case g % 4 when 0 then 'int' when 1 then 'text' when 2 then 'numeric(8,2)' else 'bool' end), ', ')
        from generate_series(1, 400) g) || ')';
end $$;
insert into wide (id, c1, c2, c3, c4, c399, c400) values (1, 'one', 2.5, true, 4, false, 400);
update wide set c201 = 'changed' where id = 1;
alter table wide drop column c5;
insert into wide (id, c400) values (2, 800);
delete from wide where id = 1;
