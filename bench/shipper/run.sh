#!/usr/bin/env bash
# Shipper benchmark: `pgstream run` (slot → JSON lines) against pg_recvlogical + wal2json over the same WAL.
#
#   bench/shipper/run.sh        (needs the built CLI, build/shipper/pgstream, or PGSTREAM_BIN; not part of make check)
#
# Environment: BENCH_ROWS (backlog rows, default 200000), BENCH_LATENCY_ROWS (default 20000), BENCH_RUNS (default 3),
# PGSTREAM_BIN, BENCH_KEEP=1 keeps the work directory (clusters, shipper logs), BENCH_METRICS=1 runs the shipper
# with metrics on (health server and Prometheus endpoint).
#
# Each run uses a fresh throwaway cluster:
#   1. catch-up throughput: both slots (`ship` for the shipper with the pgstream plugin, or wal2json when the
#      plugin is not installed; `recv` with wal2json) exist before BENCH_ROWS rows are committed in transactions of
#      1000 rows. Then each consumer reads the backlog to its end, one after the other (the order alternates between
#      runs): pg_recvlogical --endpos to /dev/null, and `pgstream run` writing JSON lines into a pipe whose reader
#      (line_reader) stops its clock at the last row. rows/s = BENCH_ROWS / wall-clock seconds, startup included.
#   2. commit→output latency: with the shipper live and caught up (a warm-up commit confirmed), BENCH_LATENCY_ROWS rows are committed in transactions of 50
#      (about 8k rows/s), each stamped with clock_timestamp() at insert; line_reader compares the stamp with the
#      time it reads the line. p50/p99 per run.
# Prints each run, then medians and the ratio shipper / pg_recvlogical (target ≥ 3×).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/bench/lib.sh"
bench_find_cli shipper

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-bench-shipper.XXXXXX")
chmod 711 "$WORK"  # the clusters inside run as user postgres when we are root
CLUSTER_DIR=
SHIPPER_PID=
trap bench_cleanup EXIT

g++ -O2 -std=c++17 -Wall -o "$WORK/line_reader" "$ROOT/bench/shipper/line_reader.cpp"

# Starts `pgstream run` with stdout into a FIFO read by line_reader; the reader keeps draining after it has
# counted (so the shipper never sees a closed pipe) until the shipper exits.
start_shipper() { # env-file log result count marker [latency]
  local fifo=$WORK/fifo.$RANDOM
  mkfifo "$fifo"
  { "$WORK/line_reader" "$4" "$5" ${6:-} >"$3" || true; cat >/dev/null; } <"$fifo" &
  READER_PID=$!
  "$BIN" run -c "$1" >"$fifo" 2>>"$2" &
  SHIPPER_PID=$!
}

stop_shipper() {
  kill -TERM "$SHIPPER_PID" 2>/dev/null || true
  local rc=0
  wait "$SHIPPER_PID" || rc=$?
  SHIPPER_PID=
  wait "$READER_PID" || true
  [ "$rc" = 0 ] || echo "  (shipper exited with $rc; see its log)" >&2
}

: >"$WORK/results"
for run in $(seq 1 "$RUNS"); do
  bench_start_cluster "$run"
  bench_write_backlog
  { bench_listener_env; echo "PGSTREAM_STDOUT_WRITER_ENABLED=true"; } >"$WORK/ship$run.env"

  measure_ship() {
    start_shipper "$WORK/ship$run.env" "$WORK/ship$run.log" "$WORK/catchup$run" "$ROWS" '"bench_rows"'
    wait_for_file "$WORK/catchup$run" 600 || { echo "shipper catch-up timed out" >&2; tail "$WORK/ship$run.log" >&2; exit 1; }
    stop_shipper
    ship_s=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' "$WORK/catchup$run")
    grep -q "^rows=$ROWS " "$WORK/catchup$run" || { echo "shipper delivered: $(cat "$WORK/catchup$run")" >&2; exit 1; }
  }
  if [ $((run % 2)) = 1 ]; then measure_recv; measure_ship; else measure_ship; measure_recv; fi
  measure_ceiling

  # Latency: shipper live, rows stamped at insert.
  start_shipper "$WORK/ship$run.env" "$WORK/ship$run.log" "$WORK/latency$run" "$LATENCY_ROWS" '"bench_latency"' latency
  bench_wait_caught_up
  bench_write_rows bench_latency "$LATENCY_ROWS" 50 0.005
  wait_for_file "$WORK/latency$run" 300 || { echo "latency rows never arrived" >&2; exit 1; }
  stop_shipper
  bench_stop_cluster
  bench_record_run "$run" "$WORK/latency$run" \
    'shipper %s rows/s (%ss), pg_recvlogical+wal2json %s rows/s (%ss), latency p50 %s ms p99 %s ms'
done

bench_medians
echo
echo "shipper catch-up, $ROWS rows, median of $RUNS: pgstream run ($PLUGIN) $ship_med rows/s, pg_recvlogical+wal2json $recv_med rows/s"
echo "ratio shipper/pg_recvlogical: ${ratio}x (target >= 3x)"
bench_print_ceiling
echo "commit->output latency, $LATENCY_ROWS rows at ~8k rows/s, median of $RUNS: p50 $p50_med ms, p99 $p99_med ms"
