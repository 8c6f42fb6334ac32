#!/usr/bin/env bash
# Snapshot benchmark: `pgstream snapshot` (full events, rendered like streamed inserts, stdout output on /dev/null)
# against `COPY ... TO STDOUT` and `pg_dump --data-only` over the same data, in the same run.
#
#   bench/snapshot/run.sh       (needs the built CLI, build/shipper/pgstream, or PGSTREAM_BIN; not part of make check)
#
# Environment: BENCH_SNAPSHOT_ROWS (rows of bench_rows, default 1000000), BENCH_SCHEMA_ROWS (rows of each of the 20
# tables of schema s20, default 50000), BENCH_RUNS (default 3), BENCH_WORKERS (snapshot readers, default 2),
# PGSTREAM_BIN, BENCH_BASELINE_BIN (another build's CLI, timed in the same runs: before/after comparisons under the
# same load), BENCH_KEEP=1 keeps the work directory.
#
# One throwaway cluster: bench_rows (the shipper benchmark's table) and a 20-table schema with mixed types. Per
# run, one after the other: psql COPY of bench_rows to /dev/null, pgstream snapshot of bench_rows, psql COPY of the
# 20 tables, pg_dump --data-only of the schema, pgstream snapshot of the schema. rows/s = rows / wall-clock seconds,
# start-up included. Prints each run (with the client's own CPU and the host's steal time), the load average before
# and after the runs, the medians, the clients' CPU per row on the 20 tables (pg_dump's against the shipper's) and
# the ratios
# (targets: snapshot >= 0.5x COPY on bench_rows; snapshot faster than pg_dump on the 20 tables with 2 workers).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/bench/lib.sh"
bench_find_cli snapshot
ROWS=${BENCH_SNAPSHOT_ROWS:-1000000}
SCHEMA_ROWS=${BENCH_SCHEMA_ROWS:-50000}
WORKERS=${BENCH_WORKERS:-2}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-bench-snapshot.XXXXXX")
chmod 711 "$WORK"
CLUSTER_DIR=$WORK/pg
cleanup() {
  "$ROOT/scripts/pg-cluster.sh" stop "$CLUSTER_DIR"
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

port=$("$ROOT/scripts/pg-cluster.sh" start "$CLUSTER_DIR")
url="postgres://postgres@127.0.0.1:$port/postgres"
psql() { command psql -X -q -v ON_ERROR_STOP=1 -d "$url" "$@"; }
echo "loading $ROWS rows into bench_rows and 20 x $SCHEMA_ROWS rows into s20 ..." >&2
psql -c "create table bench_rows (id bigint primary key, written_us bigint not null, payload text not null)" \
     -c "insert into bench_rows select g, g * 1000, md5(g::text) || md5((g + 1)::text) from generate_series(1, $ROWS) g"
psql -c "create schema s20"
for t in $(seq 1 20); do
  psql -c "create table s20.t$t (id bigint primary key, a text, b numeric(12,2), c timestamptz, d bool, e jsonb, f int[])" \
       -c "insert into s20.t$t select g, 'row ' || g, g / 7.0, timestamptz '2024-01-01' + g * interval '1 s', g % 2 = 0,
             jsonb_build_object('k', g, 's', md5(g::text)), array[g, g + 1] from generate_series(1, $SCHEMA_ROWS) g"
done
psql -c "vacuum analyze"
"$BIN" init --pgurl "$url" --slot bench --plugin "$PLUGIN" >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; exit 1; }
SCHEMA_TOTAL=$((20 * SCHEMA_ROWS))
cat >"$WORK/snapshot.env" <<ENV
PGSTREAM_POSTGRES_LISTENER_URL=$url
PGSTREAM_POSTGRES_LISTENER_SLOT_NAME=bench
PGSTREAM_STDOUT_WRITER_ENABLED=true
PGSTREAM_POSTGRES_SNAPSHOT_WORKERS=$WORKERS
PGSTREAM_LOG_LEVEL=warn
ENV
copy_all_sql=$WORK/copy20.sql
: >"$copy_all_sql"
for t in $(seq 1 20); do echo "\\copy s20.t$t to '/dev/null'" >>"$copy_all_sql"; done

# Records the wall-clock seconds of the command as "<label>" and its own CPU (user + system, the client's:
# psql, pg_dump or the shipper; not the server backends') as "<label>_cpu".
timed() { # label command...
  local start end cpu_file=$WORK/cpu steal_before
  steal_before=$(steal_seconds)
  start=$(now)
  { TIMEFORMAT='%3U %3S'; time "${@:2}" >/dev/null; } 2>"$cpu_file"
  end=$(now)
  local seconds cpu
  seconds=$(elapsed "$start" "$end")
  cpu=$(tail -n 1 "$cpu_file" | awk '{ printf "%.3f", $1 + $2 }')
  echo "$1 $seconds" >>"$WORK/results"
  echo "$1_cpu $cpu" >>"$WORK/results"
  echo "  $1: ${seconds}s (client CPU ${cpu}s, host steal $(elapsed "$steal_before" "$(steal_seconds)")s)" >&2
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(loadavg)
: >"$WORK/results"
for run in $(seq 1 "$RUNS"); do
  echo "run $run" >&2
  timed copy psql -c "copy bench_rows to stdout"
  timed snapshot "$BIN" snapshot -c "$WORK/snapshot.env" --tables bench_rows
  timed copy20 psql -f "$copy_all_sql"
  timed pg_dump20 pg_dump --data-only -n s20 -d "$url"
  timed snapshot20 "$BIN" snapshot -c "$WORK/snapshot.env" --tables 's20.*'
  if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
    timed baseline "$BENCH_BASELINE_BIN" snapshot -c "$WORK/snapshot.env" --tables bench_rows
    timed baseline20 "$BENCH_BASELINE_BIN" snapshot -c "$WORK/snapshot.env" --tables 's20.*'
  fi
done

load_after=$(loadavg)

med() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/results" | median; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
copy=$(med copy); snapshot=$(med snapshot); copy20=$(med copy20); dump20=$(med pg_dump20); snapshot20=$(med snapshot20)
echo "load average (1, 5, 15 min): $load_before before the runs, $load_after after; medians of $RUNS runs"
printf '%-44s %9s %12s\n' "reader" "seconds" "rows/s"
printf '%-44s %9s %12s\n' "psql COPY bench_rows" "$copy" "$(rate "$ROWS" "$copy")"
printf '%-44s %9s %12s\n' "pgstream snapshot bench_rows ($WORKERS workers)" "$snapshot" "$(rate "$ROWS" "$snapshot")"
printf '%-44s %9s %12s\n' "psql COPY 20 tables" "$copy20" "$(rate "$SCHEMA_TOTAL" "$copy20")"
printf '%-44s %9s %12s\n' "pg_dump --data-only 20 tables" "$dump20" "$(rate "$SCHEMA_TOTAL" "$dump20")"
printf '%-44s %9s %12s\n' "pgstream snapshot 20 tables ($WORKERS workers)" "$snapshot20" "$(rate "$SCHEMA_TOTAL" "$snapshot20")"
if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
  baseline=$(med baseline); baseline20=$(med baseline20)
  printf '%-44s %9s %12s\n' "baseline snapshot bench_rows" "$baseline" "$(rate "$ROWS" "$baseline")"
  printf '%-44s %9s %12s\n' "baseline snapshot 20 tables" "$baseline20" "$(rate "$SCHEMA_TOTAL" "$baseline20")"
  echo "baseline / pg_dump (20 tables)        $(ratio "$dump20" "$baseline20")"
fi
# Where the 2 cores go on the 20 tables: the server's text output is the same work for pg_dump (one backend) and
# the snapshot (its readers' backends); pg_dump's client does little more, the shipper renders full events.
per_row_us() { awk -v s="$1" -v n="$SCHEMA_TOTAL" 'BEGIN { printf "%.2f", s * 1e6 / n }'; }
echo "client CPU per row, 20 tables (us): pg_dump $(per_row_us "$(med pg_dump20_cpu)"), pgstream snapshot $(per_row_us "$(med snapshot20_cpu)")"
r1=$(ratio "$copy" "$snapshot"); r2=$(ratio "$dump20" "$snapshot20")
met() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "met" : "MISSED") }'; }
echo "ratios (rows/s over rows/s):"
echo "snapshot / COPY (bench_rows)          $r1   (target >= 0.5: $(met "$r1" 0.5))"
echo "snapshot / pg_dump (20 tables)        $r2   (target > 1: $(met "$r2" 1.0001))"
echo "snapshot / COPY (20 tables)           $(ratio "$copy20" "$snapshot20")"
