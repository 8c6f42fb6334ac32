#!/usr/bin/env bash
# The shipper's own CPU per row, in instructions (callgrind): `pgstream run` catching up a backlog into a file
# (stream: packed records -> Event -> translate -> filter -> event JSON -> stdout output), the same backlog through
# the search indexer into pgstream-search-mock (search: packed records -> Event -> translate -> bulk items -> _bulk
# body -> HTTP client -> per-item answer), and `pgstream snapshot` of a table into a file (snapshot: COPY decode ->
# Event -> event JSON -> stdout output).
#
#   bench/row-cost.sh     (needs valgrind and the built CLI, or PGSTREAM_BIN; not part of make check)
#
# Each path runs twice over the same kind of rows, N and 2N of them, and the per-row cost is the difference over N:
# start-up, connection and schema reads cancel out. Metrics are on for `run` (the health server with the Prometheus
# endpoint, as BENCH_METRICS=1 does), so every instrument records as in production.
#
# The search path reads the same rows through slots of its own (`search` sees 2N rows, `search_half` the last N),
# with the indexer's settings of bench/search/run.sh (batches of BENCH_SEARCH_BATCH_SIZE, default 1000; checkpoints
# every 10 ms) into a fresh pgstream-search-mock per run; a run ends when its slot has confirmed the backlog (every
# document final), and the mock must then hold N (2N) documents. So that the indexer creates its index with the
# strict mapping, as in production (and as bench/search does), both search runs see a schema version of `public`
# before their rows: a column added to bench_warmup (bench_rows and its rows stay as they are). The 2N runs see
# one schema version more than the N runs (on every path); its cost, spread over N rows, is noise.
#
# Environment: BENCH_ROWS (N, default 20000), BENCH_PATHS ("stream snapshot": which paths; "stream search" for the
# search indexer against the stdout path), PGSTREAM_BIN, BENCH_KEEP=1 keeps the work directory,
# BENCH_ANNOTATE=1 prints callgrind_annotate's inclusive costs of the 2N runs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_ROWS=${BENCH_ROWS:-20000}
PATHS=${BENCH_PATHS:-stream snapshot}
SEARCH_BATCH_SIZE=${BENCH_SEARCH_BATCH_SIZE:-1000}
source "$ROOT/bench/lib.sh"
bench_callgrind_init row-cost
if [[ $PATHS == *search* ]]; then
  MOCK=$(dirname "$BIN")/pgstream-search-mock
  [ -x "$MOCK" ] || { echo "bench/row-cost: $MOCK not built (make shipper)" >&2; exit 2; }
fi

bench_start_cluster 1
# Snapshot: bench_rows_n (N rows) and bench_rows (2N rows), written first and skipped by the stream slot.
psql -c "create table bench_rows_n (like bench_rows including all)" \
     -c "insert into bench_rows_n select g, g * 1000, 'payload of row ' || g from generate_series(1, $ROWS) g" \
     -c "select pg_replication_slot_advance('ship', pg_current_wal_lsn())" >/dev/null
# Stream: slot `ship` sees 2N rows of bench_rows, slot `half` (made after the first N) the last N of them. The
# search path's slots `search` and `search_half` likewise, each after a schema version (see above).
search_schema_version() { # column
  psql -c "alter table bench_warmup add column $1 text" >/dev/null
}
if [[ $PATHS == *search* ]]; then
  psql -c "select pg_create_logical_replication_slot('search', '$PLUGIN')" >/dev/null
  search_schema_version note
fi
bench_write_rows bench_rows "$ROWS" 1000 0
psql -c "select pg_create_logical_replication_slot('half', '$PLUGIN')" >/dev/null
if [[ $PATHS == *search* ]]; then
  psql -c "select pg_create_logical_replication_slot('search_half', '$PLUGIN')" >/dev/null
  search_schema_version note2
fi
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

end_lsn=$(psql -Atc "select pg_current_wal_lsn()")

# `pgstream run` under callgrind with the search indexer on slot SLOT into a fresh pgstream-search-mock, until the
# slot has confirmed the backlog; checks that the mock holds ROWS documents. Prints callgrind's instruction total.
search_total() { # name slot rows settings...
  local name=$1 slot=$2 rows=$3
  shift 3
  # This runs in a command substitution's subshell: the script's EXIT trap does not see its processes.
  MOCK_PID= SHIPPER_PID=
  trap '[ -z "$SHIPPER_PID" ] || kill -KILL "$SHIPPER_PID" 2>/dev/null; [ -z "$MOCK_PID" ] || kill -TERM "$MOCK_PID" 2>/dev/null; true' EXIT
  "$MOCK" --listen 127.0.0.1:0 >"$WORK/$name.mock.out" 2>"$WORK/$name.mock.log" &
  MOCK_PID=$!
  wait_for_file "$WORK/$name.mock.out" 30 || { echo "$name: the search mock did not start" >&2; exit 1; }
  local mock_port
  mock_port=$(head -1 "$WORK/$name.mock.out")
  { bench_listener_env | sed "s/SLOT_NAME=ship\$/SLOT_NAME=$slot/"
    printf '%s\n' "PGSTREAM_OPENSEARCH_STORE_URL=http://127.0.0.1:$mock_port" \
      "PGSTREAM_SEARCH_INDEXER_BATCH_SIZE=$SEARCH_BATCH_SIZE" "PGSTREAM_SEARCH_INDEXER_BATCH_TIMEOUT=100ms" \
      "PGSTREAM_CHECKPOINT_INTERVAL=10ms" "PGSTREAM_LOG_LEVEL=warn" "$@"; } >"$WORK/$name.env"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.callgrind" \
    "$BIN" run -c "$WORK/$name.env" >"$WORK/$name.log" 2>&1 &
  SHIPPER_PID=$!
  local deadline=$((SECONDS + 900))
  until [ "$(psql -Atc "select confirmed_flush_lsn >= '$end_lsn' from pg_replication_slots where slot_name = '$slot'")" = t ]; do
    [ $SECONDS -lt $deadline ] || { echo "$name: catch-up timed out" >&2; tail "$WORK/$name.log" >&2; exit 1; }
    kill -0 "$SHIPPER_PID" 2>/dev/null || { echo "$name: the shipper exited" >&2; tail "$WORK/$name.log" >&2; exit 1; }
    sleep 0.5
  done
  kill -TERM "$SHIPPER_PID"
  wait "$SHIPPER_PID" || { echo "$name: the shipper exited with $?" >&2; tail "$WORK/$name.log" >&2; exit 1; }
  SHIPPER_PID=
  local count
  # A count sees the last refresh only.
  curl -s -X POST "127.0.0.1:$mock_port/public/_refresh" >/dev/null
  count=$(curl -s "127.0.0.1:$mock_port/public/_count" | sed -nE 's/.*"count":([0-9]+).*/\1/p')
  kill -TERM "$MOCK_PID" 2>/dev/null || true
  wait "$MOCK_PID" 2>/dev/null || true
  MOCK_PID=
  [ "$count" = "$rows" ] || { echo "$name: the search mock holds ${count:-no} documents, not $rows" >&2; exit 1; }
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
if [[ $PATHS == *search* ]]; then
  search_n=$(search_total search_n search_half "$ROWS" "${metrics_on[@]}")
  search_2n=$(search_total search_2n search $((2 * ROWS)) "${metrics_on[@]}")
  echo "  search   (pgstream run, search indexer, metrics on): $(per_row "$search_n" "$search_2n")"
fi
if [[ $PATHS == *snapshot* ]]; then
  snapshot_n=$(snapshot_total snapshot_n bench_rows_n)
  snapshot_2n=$(snapshot_total snapshot_2n bench_rows)
  echo "  snapshot (pgstream snapshot):        $(per_row "$snapshot_n" "$snapshot_2n")"
fi
if [ "${BENCH_ANNOTATE:-0}" = 1 ]; then
  for name in stream_2n search_2n snapshot_2n; do
    [ -f "$WORK/$name.callgrind" ] || continue
    echo "== $name: inclusive instructions, top functions"
    callgrind_annotate --inclusive=yes "$WORK/$name.callgrind" 2>/dev/null | sed -n '1,60p'
  done
fi
