#!/usr/bin/env bash
# DDL benchmark for schema tracking: how much slower does DDL get when pgstream logs every schema change?
#
# For each schema size in SIZES (default "500 1000 5000" existing tables), time STATEMENTS pairs of
#   CREATE TABLE bench.n_i (...); ALTER TABLE bench.n_i ADD COLUMN ...;
# (each autocommitted) in each setup of SETUPS:
#   without    no extension
#   pgstream   CREATE EXTENSION pgstream, its default: since 0.5.0 versions are stored and streamed as deltas and
#              pgstream.schema_log is a view of whole documents (migration 0012)
#   full       the extension with pgstream.schema_versions = full (ALTER DATABASE ... SET): every version the whole
#              schema, composed in C from the previous one (compose_tables)
#   0.5.0      CREATE EXTENSION pgstream VERSION '0.5.0': deltas, describe_table in SQL (before migration 0015)
#   0.4.0      CREATE EXTENSION pgstream VERSION '0.4.0', its default (whole versions composed in C)
#   delta-0.4.0  0.4.0 with pgstream.schema_versions = delta (before migration 0011 cut the fixed cost per DDL)
#   sql        the extension with compose_tables_sql, what `pgstream init` installs without the pgstream library
#   before     CREATE EXTENSION pgstream VERSION '0.2.0': versions edited with jsonb_set (the cost before 0.3.0)
#   rebuild    the extension, but every DDL rebuilds the whole schema's JSON from the catalogs, as the Go pgstream
#              does (same output, so the difference is only the cost of rebuilding; ~0.3 s per statement at 600
#              tables, so it is not in the default set)
# STATEMENTS is a list matching SIZES (default "1000 1000 200": fewer pairs at 5,000 tables keep the run short),
# RUNS runs each (default 3), each in a fresh database. The existing tables are created untimed with logging off
# and logged by one refresh_schema(). Prints, per size and setup, the median seconds, ms per DDL statement, WAL
# bytes per DDL statement (pg_current_wal_insert_lsn around the workload), and the ratios to `without`.
#   SIZES="500 1000" STATEMENTS="200 200" RUNS=1 SETUPS="without pgstream" bench/ddl/run.sh
# Needs the extension installed (make install). Uses a throwaway cluster (scripts/pg-cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=${SIZES:-500 1000 5000}
STATEMENTS=${STATEMENTS:-1000 1000 200}
RUNS=${RUNS:-3}
SETUPS=${SETUPS:-without pgstream full 0.4.0 delta-0.4.0}
read -ra sizes <<<"$SIZES"
read -ra statement_counts <<<"$STATEMENTS"
[ "${#sizes[@]}" = "${#statement_counts[@]}" ] || { echo "STATEMENTS must list one count per entry of SIZES" >&2; exit 2; }

if [ -z "${PGSTREAM_TEST_PGDIR:-}" ]; then
  exec scripts/pg-cluster.sh with "$0" "$@"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"

write_workload() { # existing statements -> setup.sql and workload.sql in $work
  # Setup (not timed): the existing tables, with logging off (skip_log needs a superuser, which we are); run_once
  # logs them in one refresh_schema().
  {
    echo "SET pgstream.skip_log = on;"
    echo "CREATE SCHEMA bench;"
    for i in $(seq 1 "$1"); do
      echo "CREATE TABLE bench.t_$i (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, qty integer DEFAULT 0, note text);"
    done
    echo "RESET pgstream.skip_log;"
  } > "$work/setup.sql"
  # The timed workload.
  for i in $(seq 1 "$2"); do
    echo "CREATE TABLE bench.n_$i (id bigint PRIMARY KEY, payload jsonb, created_at timestamptz DEFAULT now());"
    echo "ALTER TABLE bench.n_$i ADD COLUMN tag text;"
  done > "$work/workload.sql"
}

# The Go pgstream's approach, for comparison: a full rebuild of each touched schema on every DDL.
cat > "$work/rebuild.sql" <<'SQL'
CREATE FUNCTION public.bench_log_full_rebuild() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE s text;
BEGIN
    FOR s IN SELECT DISTINCT schema_name FROM pg_event_trigger_ddl_commands()
             WHERE schema_name IS NOT NULL AND NOT pgstream.is_system_schema(schema_name) LOOP
        PERFORM pgstream.refresh_schema(s);
    END LOOP;
END $$;
ALTER EVENT TRIGGER pgstream_log_schema_ddl DISABLE;
CREATE EVENT TRIGGER bench_log_full_rebuild ON ddl_command_end EXECUTE FUNCTION public.bench_log_full_rebuild();
SQL

run_once() { # setup run statements -> "seconds wal_bytes"
  local setup=$1 db="bench_${1//[^a-z0-9]/_}_$2" statements=$3
  psql -qX -d postgres -c "CREATE DATABASE $db" >/dev/null
  case "$setup" in
    pgstream) psql -qX -d "$db" -c "CREATE EXTENSION pgstream" >/dev/null ;;
    full) psql -qX -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION pgstream" \
               -c "ALTER DATABASE $db SET pgstream.schema_versions = full" >/dev/null ;;
    0.5.0) psql -qX -d "$db" -c "CREATE EXTENSION pgstream VERSION '0.5.0'" >/dev/null ;;
    0.4.0) psql -qX -d "$db" -c "CREATE EXTENSION pgstream VERSION '0.4.0'" >/dev/null ;;
    delta-0.4.0) psql -qX -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION pgstream VERSION '0.4.0'" \
                      -c "ALTER DATABASE $db SET pgstream.schema_versions = delta" >/dev/null ;;
    sql) psql -qX -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION pgstream" \
              -c "CREATE OR REPLACE FUNCTION pgstream.compose_tables(previous jsonb, touched oid[], described jsonb[]) RETURNS jsonb
                  LANGUAGE sql IMMUTABLE AS 'SELECT pgstream.compose_tables_sql(\$1, \$2, \$3)'" >/dev/null ;;
    before) psql -qX -d "$db" -c "CREATE EXTENSION pgstream VERSION '0.2.0'" >/dev/null ;;
    rebuild) psql -qX -d "$db" -c "CREATE EXTENSION pgstream" >/dev/null
             psql -qX -v ON_ERROR_STOP=1 -d "$db" -f "$work/rebuild.sql" >/dev/null ;;
  esac
  psql -qX -v ON_ERROR_STOP=1 -d "$db" -f "$work/setup.sql" >/dev/null
  [ "$setup" = without ] || psql -qX -v ON_ERROR_STOP=1 -d "$db" -c "SELECT pgstream.refresh_schema('bench')" >/dev/null
  # One untimed DDL first: a delta setup loads the current table descriptions from the full version refresh_schema
  # wrote (once per schema, O(tables)); the timed workload measures the steady state of every setup.
  psql -qX -v ON_ERROR_STOP=1 -d "$db" -c "CREATE TABLE bench.warm_up (id int)" >/dev/null
  psql -qX -d "$db" -c "CHECKPOINT" >/dev/null
  local start end lsn_before lsn_after
  lsn_before=$(psql -qXAt -d "$db" -c "SELECT pg_current_wal_insert_lsn()")
  start=$(date +%s.%N)
  psql -qX -v ON_ERROR_STOP=1 -d "$db" -f "$work/workload.sql" >/dev/null
  end=$(date +%s.%N)
  lsn_after=$(psql -qXAt -d "$db" -c "SELECT pg_current_wal_insert_lsn()")
  if [ "$setup" != without ]; then
    local versions
    versions=$(psql -qXAt -d "$db" -c "SELECT count(*) FROM pgstream.schema_log WHERE schema_name = 'bench'")
    [ "$versions" -ge "$((2 * statements))" ] || { echo "$setup: only $versions versions logged" >&2; exit 1; }
  fi
  local wal
  wal=$(psql -qXAt -d "$db" -c "SELECT pg_wal_lsn_diff('$lsn_after', '$lsn_before')::bigint")
  psql -qX -d postgres -c "DROP DATABASE $db" >/dev/null
  echo "$(echo "$end - $start" | bc -l) $wal"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "ddl benchmark: (CREATE TABLE + ALTER TABLE ADD COLUMN) pairs in a schema of N tables; setups: $SETUPS; $RUNS runs, median"
printf '%-7s %-6s %-9s %9s %13s %14s %9s\n' tables pairs setup seconds ms/statement "WAL B/stmt" "x without"
for index in "${!sizes[@]}"; do
  existing=${sizes[$index]}
  statements=${statement_counts[$index]}
  write_workload "$existing" "$statements"
  declare -A seconds=() wal=()
  for setup in $SETUPS; do
    times=() wals=()
    for run in $(seq 1 "$RUNS"); do
      read -r t w < <(run_once "$setup" "$run" "$statements")
      times+=("$t"); wals+=("$w")
      echo "  $existing tables, $setup, run $run: $t s, $w WAL bytes" >&2
    done
    seconds[$setup]=$(printf '%s\n' "${times[@]}" | median)
    wal[$setup]=$(printf '%s\n' "${wals[@]}" | median)
    ratio=-
    [ -n "${seconds[without]:-}" ] && ratio=$(printf '%.2f' "$(echo "${seconds[$setup]} / ${seconds[without]}" | bc -l)")
    printf '%-7s %-6s %-9s %9.2f %13.2f %14.0f %9s\n' "$existing" "$statements" "$setup" "${seconds[$setup]}" \
      "$(echo "${seconds[$setup]} * 1000 / (2 * $statements)" | bc -l)" "$(echo "${wal[$setup]} / (2 * $statements)" | bc -l)" "$ratio"
  done
  unset seconds wal
done
