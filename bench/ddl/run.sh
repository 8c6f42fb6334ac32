#!/usr/bin/env bash
# DDL benchmark for schema tracking: how much slower does DDL get when pgstream logs every schema change?
#
# In a schema that already holds EXISTING tables (default 500), time STATEMENTS pairs of
#   CREATE TABLE bench.n_i (...); ALTER TABLE bench.n_i ADD COLUMN ...;
# (default 1,000 pairs = 2,000 DDL statements, each autocommitted) in three setups:
#   without    no extension
#   pgstream   CREATE EXTENSION pgstream (versions composed from the previous version + re-described tables)
#   rebuild    the extension, but every DDL rebuilds the whole schema's JSON from the catalogs, as the Go pgstream
#              does (same output, so the difference is only the cost of rebuilding)
# RUNS runs each (default 3), each in a fresh database; prints the median seconds and the ratios to `without`.
#   bench/ddl/run.sh [EXISTING] [STATEMENTS] [RUNS]
#   SETUPS="without pgstream rebuild" bench/ddl/run.sh 500 100 3    (rebuild takes ~0.3 s per statement at 600
#                                                                     tables, so it is not in the default set)
# Needs the extension installed (make install). Uses a throwaway cluster (scripts/pg-cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
EXISTING=${1:-500}
STATEMENTS=${2:-1000}
RUNS=${3:-3}
SETUPS=${SETUPS:-without pgstream}

if [ -z "${PGSTREAM_TEST_PGDIR:-}" ]; then
  exec scripts/pg-cluster.sh with "$0" "$@"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"

# Setup (not timed): the existing tables.
{
  echo "CREATE SCHEMA bench;"
  for i in $(seq 1 "$EXISTING"); do
    echo "CREATE TABLE bench.t_$i (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, qty integer DEFAULT 0, note text);"
  done
} > "$work/setup.sql"

# The timed workload.
for i in $(seq 1 "$STATEMENTS"); do
  echo "CREATE TABLE bench.n_$i (id bigint PRIMARY KEY, payload jsonb, created_at timestamptz DEFAULT now());"
  echo "ALTER TABLE bench.n_$i ADD COLUMN tag text;"
done > "$work/workload.sql"

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

run_once() { # setup run -> seconds
  local setup=$1 db="bench_${1}_$2"
  psql -qX -d postgres -c "CREATE DATABASE $db" >/dev/null
  case "$setup" in
    pgstream) psql -qX -d "$db" -c "CREATE EXTENSION pgstream" >/dev/null ;;
    rebuild) psql -qX -d "$db" -c "CREATE EXTENSION pgstream" >/dev/null
             psql -qX -v ON_ERROR_STOP=1 -d "$db" -f "$work/rebuild.sql" >/dev/null ;;
  esac
  psql -qX -v ON_ERROR_STOP=1 -d "$db" -f "$work/setup.sql" >/dev/null
  psql -qX -d "$db" -c "CHECKPOINT" >/dev/null
  local start end
  start=$(date +%s.%N)
  psql -qX -v ON_ERROR_STOP=1 -d "$db" -f "$work/workload.sql" >/dev/null
  end=$(date +%s.%N)
  if [ "$setup" != without ]; then
    local versions
    versions=$(psql -qXAt -d "$db" -c "SELECT count(*) FROM pgstream.schema_log WHERE schema_name = 'bench'")
    [ "$versions" -ge "$((2 * STATEMENTS))" ] || { echo "$setup: only $versions versions logged" >&2; exit 1; }
  fi
  psql -qX -d postgres -c "DROP DATABASE $db" >/dev/null
  echo "$end - $start" | bc -l
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "ddl benchmark: $STATEMENTS x (CREATE TABLE + ALTER TABLE ADD COLUMN) in a schema with $EXISTING tables, $RUNS runs, median"
declare -A result
for setup in $SETUPS; do
  times=()
  for run in $(seq 1 "$RUNS"); do
    times+=("$(run_once "$setup" "$run")")
  done
  result[$setup]=$(printf '%s\n' "${times[@]}" | median)
  printf '  %-9s %8.2f s  %6.1f ms/statement  (runs: %s)\n' "$setup" "${result[$setup]}" \
    "$(echo "${result[$setup]} * 1000 / (2 * $STATEMENTS)" | bc -l)" "$(printf '%.2f ' "${times[@]}")"
done
if [ -n "${result[without]:-}" ]; then
  for setup in $SETUPS; do
    [ "$setup" = without ] && continue
    printf 'ratio %s/without: %.2f\n' "$setup" "$(echo "${result[$setup]} / ${result[without]}" | bc -l)"
  done
fi
