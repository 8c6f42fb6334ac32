#!/usr/bin/env bash
# Search benchmark: `pgstream run` slot → search indexer → pgstream-search-mock, against the same shipper's stdout
# path over the same WAL, in the same run.
#
#   bench/search/run.sh     (needs the built CLI and pgstream-search-mock: make shipper; not part of make check)
#
# Environment: BENCH_ROWS (backlog rows, default 200000), BENCH_RUNS (default 3), BENCH_SEARCH_BATCH_SIZE (the
# indexer's PGSTREAM_SEARCH_INDEXER_BATCH_SIZE, default 1000), BENCH_SEARCH_BATCH_TIMEOUT (its _BATCH_TIMEOUT,
# default 10ms), PGSTREAM_BIN, BENCH_KEEP=1 keeps the work directory.
#
# Each run uses a fresh throwaway cluster with two slots made before BENCH_ROWS rows are committed in transactions
# of 1000: `ship` (read by `pgstream run` with the stdout writer into /dev/null) and `search` (read by `pgstream run`
# with the search indexer into a fresh pgstream-search-mock). Each consumer reads the backlog until its slot's
# confirmed_flush_lsn passes the backlog's end (the indexer confirms a row only once the mock took its document),
# one after the other (the order alternates between runs). Reported per path: documents (rows) per second, startup
# included; the shipper's and its walsender's CPU (user+system) per row; for the search path also the mock's CPU;
# the system (kernel) part of the shipper's and the mock's CPU (sockets, wake-ups, page faults: the search path's
# HTTP traffic shows there); the _bulk request count and mean body size (the indexer's metrics); the load average
# and the host's steal time around each run; and the search path's whole CPU per document against the 2-core
# budget (20 us per document at 100k docs/s).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/bench/lib.sh"
bench_find_cli search
MOCK=$(dirname "$BIN")/pgstream-search-mock
[ -x "$MOCK" ] || { echo "bench/search: $MOCK not built (make shipper)" >&2; exit 2; }
BATCH_SIZE=${BENCH_SEARCH_BATCH_SIZE:-1000}
TICKS=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-bench-search.XXXXXX")
chmod 711 "$WORK"  # the clusters inside run as user postgres when we are root
CLUSTER_DIR=
SHIPPER_PID=
MOCK_PID=
cleanup() {
  [ -z "$SHIPPER_PID" ] || kill -KILL "$SHIPPER_PID" 2>/dev/null || true
  [ -z "$MOCK_PID" ] || kill -TERM "$MOCK_PID" 2>/dev/null || true
  [ -z "$CLUSTER_DIR" ] || "$ROOT/scripts/pg-cluster.sh" stop "$CLUSTER_DIR"
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

cpu_seconds() { # pid: user+system CPU seconds so far
  awk -v t="$TICKS" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"
}
system_seconds() { # pid: system CPU seconds so far (the kernel's share: sockets, pipes, page faults)
  awk -v t="$TICKS" '{ printf "%.3f", $15 / t }' "/proc/$1/stat"
}

# Runs `pgstream run -c $1` until slot $2 passes the backlog; sets secs, cpu (the shipper's) and wal_cpu (the
# walsender's: it starts with the shipper's connection, so its whole CPU time is this catch-up's).
measure() { # env-file slot log
  local start walsender
  start=$(now)
  "$BIN" run -c "$1" >/dev/null 2>>"$3" &
  SHIPPER_PID=$!
  bench_wait_confirmed "$2" 600 "$SHIPPER_PID" || { echo "$2: catch-up failed" >&2; tail "$3" >&2; exit 1; }
  secs=$(elapsed "$start" "$(now)")
  cpu=$(cpu_seconds "$SHIPPER_PID")
  sys=$(system_seconds "$SHIPPER_PID")
  walsender=$(psql -Atc "select active_pid from pg_replication_slots where slot_name = '$2'")
  wal_cpu=0
  [ -z "$walsender" ] || wal_cpu=$(cpu_seconds "$walsender" 2>/dev/null || echo 0)
}

load_average() { cut -d' ' -f1 /proc/loadavg; }

stop_shipper() {
  kill -TERM "$SHIPPER_PID" 2>/dev/null || true
  wait "$SHIPPER_PID" || true
  SHIPPER_PID=
}

: >"$WORK/results"
for run in $(seq 1 "$RUNS"); do
  bench_start_cluster "$run"
  "$BIN" init --pgurl "$url" --slot search --plugin "$PLUGIN" >>"$WORK/init$run.log" 2>&1 \
    || { cat "$WORK/init$run.log" >&2; exit 1; }
  # A schema version the `search` slot sees (the tables' first one was logged before it existed): the indexer
  # creates the index with its strict mapping, as in production, instead of the _bulk auto-creating a dynamic
  # one. The column stays null; both paths stream the same WAL.
  psql -c "alter table bench_rows add column note text"
  bench_write_backlog

  "$MOCK" --listen 127.0.0.1:0 >"$WORK/mock$run.out" 2>"$WORK/mock$run.log" &
  MOCK_PID=$!
  wait_for_file "$WORK/mock$run.out" 30 || { echo "search mock did not start" >&2; exit 1; }
  mock_port=$(head -1 "$WORK/mock$run.out")

  # Both paths confirm every 10 ms (as bench/kafka and bench/webhooks do): with the default 1 s status interval the
  # slot's confirmed position, which ends each measurement, moves in whole seconds and hides the paths' difference.
  # Metrics are on for both paths (the search path needs them for its _bulk counts): every event pays the same
  # instruments on both. The indexer's batch timeout (BENCH_SEARCH_BATCH_TIMEOUT, 10ms here) only decides when
  # the backlog's last, partial batch goes (full batches go at once); with the 1s default or 100ms, each
  # catch-up ended with that wait, a fixed cost that is not throughput, while the stdout path writes its partial
  # batch as soon as the source is idle.
  { BENCH_METRICS=1 bench_listener_env; echo "PGSTREAM_STDOUT_WRITER_ENABLED=true"; echo "PGSTREAM_CHECKPOINT_INTERVAL=10ms"; } \
    >"$WORK/ship$run.env"
  {
    printf '%s\n' "PGSTREAM_POSTGRES_LISTENER_URL=$url" "PGSTREAM_POSTGRES_LISTENER_SLOT_NAME=search" \
      "PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL=$url" "PGSTREAM_OPENSEARCH_STORE_URL=http://127.0.0.1:$mock_port" \
      "PGSTREAM_SEARCH_INDEXER_BATCH_SIZE=$BATCH_SIZE" "PGSTREAM_SEARCH_INDEXER_BATCH_TIMEOUT=${BENCH_SEARCH_BATCH_TIMEOUT:-10ms}" \
      "PGSTREAM_HEALTH_CHECK_ENABLED=true" "PGSTREAM_HEALTH_CHECK_ADDRESS=127.0.0.1:0" \
      "PGSTREAM_METRICS_PROMETHEUS_ENABLED=true" "PGSTREAM_CHECKPOINT_INTERVAL=10ms"
  } >"$WORK/search$run.env"

  measure_stdout() {
    measure "$WORK/ship$run.env" ship "$WORK/ship$run.log"
    stdout_s=$secs stdout_cpu=$cpu stdout_sys=$sys stdout_wal_cpu=$wal_cpu
    stop_shipper
  }
  measure_search() {
    local mock_cpu_before mock_sys_before
    mock_cpu_before=$(cpu_seconds "$MOCK_PID")
    mock_sys_before=$(system_seconds "$MOCK_PID")
    measure "$WORK/search$run.env" search "$WORK/search$run.log"
    search_s=$secs search_cpu=$cpu search_sys=$sys search_wal_cpu=$wal_cpu
    mock_cpu=$(awk -v a="$mock_cpu_before" -v b="$(cpu_seconds "$MOCK_PID")" 'BEGIN { printf "%.3f", b - a }')
    mock_sys=$(awk -v a="$mock_sys_before" -v b="$(system_seconds "$MOCK_PID")" 'BEGIN { printf "%.3f", b - a }')
    local port metrics
    port=$(sed -nE 's/.*health server: listening on 127\.0\.0\.1:([0-9]+).*/\1/p' "$WORK/search$run.log" | tail -1)
    metrics=$(curl -s "127.0.0.1:$port/metrics")
    bulk_requests=$(awk '/^pgstream_search_bulk_requests_total/ { print $2 }' <<<"$metrics")
    bulk_bytes=$(awk '/^pgstream_search_bulk_bytes_total/ { print $2 }' <<<"$metrics")
    stop_shipper
  }
  load_before=$(load_average)
  steal_before=$(steal_seconds)
  if [ $((run % 2)) = 1 ]; then measure_stdout; measure_search; else measure_search; measure_stdout; fi
  load_after=$(load_average)
  steal=$(elapsed "$steal_before" "$(steal_seconds)")
  kill -TERM "$MOCK_PID" 2>/dev/null || true
  wait "$MOCK_PID" 2>/dev/null || true
  MOCK_PID=
  bench_stop_cluster

  awk -v rows="$ROWS" -v ss="$stdout_s" -v sc="$stdout_cpu" -v es="$search_s" -v ec="$search_cpu" -v mc="$mock_cpu" \
      -v sw="$stdout_wal_cpu" -v ew="$search_wal_cpu" -v br="$bulk_requests" -v bb="$bulk_bytes" -v run="$run" \
      -v l0="$load_before" -v l1="$load_after" -v st="$steal" \
      -v sy="$stdout_sys" -v ey="$search_sys" -v my="$mock_sys" 'BEGIN {
    total = (ec + mc + ew) * 1e6 / rows
    printf "run %d (load average %s -> %s, host steal %.2fs): stdout %.0f rows/s (%.2fs, shipper CPU %.2f us/row of which system %.2f, walsender %.2f us/row); search %.0f docs/s (%.2fs, shipper CPU %.2f us/doc of which system %.2f, mock CPU %.2f us/doc of which system %.2f, walsender %.2f us/doc); ratio %.2f; %d bulk requests, mean %.0f KiB\n",
      run, l0, l1, st, rows / ss, ss, sc * 1e6 / rows, sy * 1e6 / rows, sw * 1e6 / rows, rows / es, es, ec * 1e6 / rows, ey * 1e6 / rows, mc * 1e6 / rows, my * 1e6 / rows, ew * 1e6 / rows, ss / es, br, bb / br / 1024
    printf "%f %f %f %f %f %f %f %f %f\n", rows / ss, rows / es, sc * 1e6 / rows, ec * 1e6 / rows, mc * 1e6 / rows, ss / es, bb / br / 1024, ew * 1e6 / rows, total > "/dev/stderr"
  }' 2>>"$WORK/results"
done

col() { awk -v c="$1" '{ print $c }' "$WORK/results" | median; }
echo
echo "search catch-up, $ROWS rows, batch size $BATCH_SIZE, median of $RUNS: stdout path $(col 1) rows/s, search path $(col 2) docs/s"
echo "ratio search/stdout: $(col 6) (target >= 0.6); shipper CPU per row: stdout $(col 3) us, search $(col 4) us; mock CPU $(col 5) us/doc"
echo "mean _bulk body: $(col 7) KiB"
# On 2 cores the search path cannot beat 2 cores' worth of its CPU: 100k docs/s needs <= 20 us per document
# of shipper + mock + walsender together (and both processes busy in parallel all the time).
echo "search path CPU per doc: shipper $(col 4) + mock $(col 5) + walsender $(col 8) = $(col 9) us; 2-core bound $(awk -v t="$(col 9)" 'BEGIN { printf "%.0f", 2e6 / t }') docs/s (100k docs/s needs <= 20 us)"
echo "load average: $(cat /proc/loadavg)"
