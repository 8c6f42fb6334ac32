-- Shared by the schema_* pg_regress tests (included with \i; pg_regress runs from the repository root).
-- Helpers (session-local) that print logged versions without their volatile ids and oids. They read the full
-- documents (pgstream.schema_log_full), so the same tests check delta versions (pgstream.schema_versions = delta).
-- show(schema): the latest version of a schema, one line per table: columns, primary key, unique-not-null, indexes.
CREATE FUNCTION pg_temp.show(s text) RETURNS SETOF text LANGUAGE sql AS $f$
    WITH latest AS (
        SELECT version, schema FROM pgstream.schema_log_full WHERE schema_name = s ORDER BY version DESC LIMIT 1
    )
    SELECT format('%s v%s: %s', s, version, CASE WHEN schema ? 'dropped' THEN 'dropped' ELSE 'no tables' END)
    FROM latest WHERE schema ? 'dropped' OR jsonb_array_length(schema -> 'tables') = 0
    UNION ALL
    SELECT format('%s v%s %s(%s) pk%s unn%s idx[%s]', s, l.version, t ->> 'name',
        (SELECT string_agg(concat_ws(' ', c ->> 'name', c ->> 'type',
                    CASE WHEN NOT (c ->> 'nullable')::boolean THEN 'not null' END,
                    CASE WHEN (c ->> 'unique')::boolean THEN 'unique' END,
                    'default ' || (c ->> 'default'),
                    CASE WHEN (c ->> 'generated')::boolean THEN 'generated ' || (c ->> 'generated_kind') END,
                    CASE WHEN c ->> 'identity' <> '' THEN 'identity ' || (c ->> 'identity') END,
                    'comment ' || (c ->> 'metadata')), ', ' ORDER BY o)
         FROM jsonb_array_elements(t -> 'columns') WITH ORDINALITY AS x(c, o)),
        t -> 'primary_key_columns', t -> 'unique_not_null_columns',
        (SELECT string_agg(format('%s%s%s', i ->> 'name', i -> 'columns',
                    CASE WHEN (i ->> 'primary')::boolean THEN ' primary' WHEN (i ->> 'unique')::boolean THEN ' unique' ELSE '' END),
                    ', ' ORDER BY o)
         FROM jsonb_array_elements(t -> 'indexes') WITH ORDINALITY AS x(i, o)))
    FROM latest l, jsonb_array_elements(CASE WHEN jsonb_typeof(l.schema -> 'tables') = 'array' THEN l.schema -> 'tables' ELSE '[]' END) AS t
$f$;
-- describe_table_sql(oid): the SQL description of a table where the extension has one (0.6.0: describe_table is C
-- and describe_table_sql the SQL version it must equal), else describe_table itself.
CREATE FUNCTION pg_temp.describe_table_sql(rel oid) RETURNS jsonb LANGUAGE plpgsql AS $f$
DECLARE described jsonb;
BEGIN
    IF to_regproc('pgstream.describe_table_sql') IS NULL THEN
        RETURN pgstream.describe_table(rel);
    END IF;
    EXECUTE 'SELECT pgstream.describe_table_sql($1)' INTO described USING rel;
    RETURN described;
END
$f$;
-- check_log(): problems with the latest version of every logged schema (no rows = none). Each must equal a
-- description built from the catalogs in full (the trigger composes versions incrementally), a dropped schema must
-- not exist, and every id must be the table's id in pgstream.table_ids, columns "<table id>-<attnum>". Every table of
-- a logged schema must be described alike by describe_table and describe_table_sql.
CREATE FUNCTION pg_temp.check_log() RETURNS SETOF text LANGUAGE sql AS $f$
    -- The latest version numbers first: the view composes a document only for the rows whose "schema" is read.
    WITH latest AS (
        SELECT l.schema_name, l.version, l.schema
        FROM (SELECT schema_name, max(version) AS version FROM pgstream.schema_log_full GROUP BY schema_name) AS m
        JOIN pgstream.schema_log_full l USING (schema_name, version)
    )
    SELECT format('%s v%s differs from a full rebuild', schema_name, version)
    FROM latest WHERE NOT schema ? 'dropped' AND schema <> pgstream.get_schema(schema_name)
    UNION ALL
    SELECT format('%s v%s is marked dropped but exists', schema_name, version)
    FROM latest WHERE schema ? 'dropped' AND EXISTS (SELECT FROM pg_namespace WHERE nspname = schema_name)
    UNION ALL
    SELECT format('%s.%s: table id is not the mapped id', l.schema_name, t ->> 'name')
    FROM latest l, jsonb_array_elements(CASE WHEN jsonb_typeof(l.schema -> 'tables') = 'array' THEN l.schema -> 'tables' ELSE '[]' END) AS t
    WHERE NOT EXISTS (SELECT FROM pgstream.table_ids ti WHERE ti.id = t ->> 'pgstream_id' AND ti.oid = (t ->> 'oid')::oid)
    UNION ALL
    SELECT format('%s.%s.%s: column id is not "<table id>-<attnum>"', l.schema_name, t ->> 'name', c ->> 'name')
    FROM latest l, jsonb_array_elements(CASE WHEN jsonb_typeof(l.schema -> 'tables') = 'array' THEN l.schema -> 'tables' ELSE '[]' END) AS t,
         jsonb_array_elements(t -> 'columns') AS c
    WHERE c ->> 'pgstream_id' IS DISTINCT FROM (t ->> 'pgstream_id') || '-' ||
          (SELECT attnum FROM pg_attribute WHERE attrelid = (t ->> 'oid')::oid AND attname = c ->> 'name')
    UNION ALL
    SELECT format('%s.%s: describe_table differs from describe_table_sql', n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname IN (SELECT schema_name FROM latest WHERE NOT schema ? 'dropped')
      AND pgstream.describe_table(c.oid) IS DISTINCT FROM pg_temp.describe_table_sql(c.oid)
$f$;
-- versions(): how many versions each schema has, to show which statements logged one.
CREATE FUNCTION pg_temp.versions() RETURNS TABLE (schema_name text, latest bigint, rows bigint) LANGUAGE sql AS $f$
    SELECT schema_name, max(version), count(*) FROM pgstream.schema_log GROUP BY 1 ORDER BY 1
$f$;
