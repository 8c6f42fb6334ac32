#!/usr/bin/env bash
# The shipper's own CPU per row, in instructions (callgrind): `pgstream run` catching up a backlog into a file
# (stream: packed records -> Event -> translate -> filter -> event JSON -> stdout output) and `pgstream snapshot`
# of a table into a file (snapshot: COPY decode -> Event -> event JSON -> stdout output).
#
#   bench/row-cost.sh     (needs valgrind and the built CLI, or PGSTREAM_BIN; not part of make check)
#
# Each path runs twice over the same kind of rows, N and 2N of them, and the per-row cost is the difference over N:
# start-up, connection and schema reads cancel out. Metrics are on for `run` (the health server with the Prometheus
# endpoint, as BENCH_METRICS=1 does), so every instrument records as in production.
#
# Environment: BENCH_ROWS (N, default 20000), BENCH_PATHS ("stream snapshot": which paths), PGSTREAM_BIN, BENCH_KEEP=1 keeps the work directory,
# BENCH_ANNOTATE=1 prints callgrind_annotate's inclusive costs of the 2N runs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_ROWS=${BENCH_ROWS:-20000}
PATHS=${BENCH_PATHS:-stream snapshot}
source "$ROOT/bench/lib.sh"
bench_callgrind_init row-cost

bench_start_cluster 1
# Snapshot: bench_rows_n (N rows) and bench_rows (2N rows), written first and skipped by the stream slot.
psql -c "create table bench_rows_n (like bench_rows including all)" \
     -c "insert into bench_rows_n select g, g * 1000, 'payload of row ' || g from generate_series(1, $ROWS) g" \
     -c "select pg_replication_slot_advance('ship', pg_current_wal_lsn())" >/dev/null
# Stream: slot `ship` sees 2N rows of bench_rows, slot `half` (made after the first N) the last N of them.
bench_write_rows bench_rows "$ROWS" 1000 0
psql -c "select pg_create_logical_replication_slot('half', '$PLUGIN')" >/dev/null
psql <<SQL
do \$\$ begin
  for chunk in 0 .. ($ROWS - 1) / 1000 loop
    insert into bench_rows select g, (extract(epoch from clock_timestamp()) * 1e6)::bigint, 'payload of row ' || g
      from generate_series($ROWS + chunk * 1000 + 1, $ROWS + least((chunk + 1) * 1000, $ROWS)) g;
    commit;
  end loop;
end \$\$;
SQL

snapshot_total() { # name table
  local name=$1
  { echo "PGSTREAM_POSTGRES_LISTENER_URL=$url"; echo "PGSTREAM_POSTGRES_LISTENER_SLOT_NAME=ship"
    echo "PGSTREAM_STDOUT_WRITER_ENABLED=true"; echo "PGSTREAM_STDOUT_WRITER_FILE=$WORK/$name.jsonl"
    echo "PGSTREAM_POSTGRES_SNAPSHOT_WORKERS=2"; echo "PGSTREAM_LOG_LEVEL=warn"; } >"$WORK/$name.env"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.callgrind" \
    "$BIN" snapshot -c "$WORK/$name.env" --tables "$2" >"$WORK/$name.log" 2>&1 || { echo "$name: the snapshot failed" >&2; tail "$WORK/$name.log" >&2; exit 1; }
  sed -n 's/^summary: //p' "$WORK/$name.callgrind"
}

per_row() { awk -v a="$1" -v b="$2" -v n="$ROWS" 'BEGIN { printf "%.0f", (b - a) / n }'; }

metrics_on=(PGSTREAM_HEALTH_CHECK_ENABLED=true PGSTREAM_HEALTH_CHECK_ADDRESS=127.0.0.1:0
  PGSTREAM_METRICS_PROMETHEUS_ENABLED=true)
echo "instructions per row (N = $ROWS; (2N run - N run) / N):"
if [[ $PATHS == *stream* ]]; then
  stream_n=$(bench_callgrind_run stream_n half "$ROWS" "${metrics_on[@]}")
  stream_2n=$(bench_callgrind_run stream_2n ship $((2 * ROWS)) "${metrics_on[@]}")
  echo "  stream   (pgstream run, metrics on): $(per_row "$stream_n" "$stream_2n")"
fi
if [[ $PATHS == *snapshot* ]]; then
  snapshot_n=$(snapshot_total snapshot_n bench_rows_n)
  snapshot_2n=$(snapshot_total snapshot_2n bench_rows)
  echo "  snapshot (pgstream snapshot):        $(per_row "$snapshot_n" "$snapshot_2n")"
fi
if [ "${BENCH_ANNOTATE:-0}" = 1 ]; then
  for name in stream_2n snapshot_2n; do
    [ -f "$WORK/$name.callgrind" ] || continue
    echo "== $name: inclusive instructions, top functions"
    callgrind_annotate --inclusive=yes "$WORK/$name.callgrind" 2>/dev/null | sed -n '1,60p'
  done
fi
