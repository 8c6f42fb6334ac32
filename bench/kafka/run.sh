#!/usr/bin/env bash
# Kafka benchmark: `pgstream run` (slot → Kafka batch writer → librdkafka mock cluster with 3 brokers) against
# pg_recvlogical + wal2json to /dev/null over the same WAL, in the same run.
#
#   bench/kafka/run.sh     (needs the built CLI and pgstream-kafka-mock: make shipper; not part of make check)
#
# Environment: BENCH_ROWS (backlog rows, default 200000), BENCH_LATENCY_ROWS (default 20000), BENCH_RUNS (default 3),
# PGSTREAM_BIN (the CLI; pgstream-kafka-mock is looked up next to it), BENCH_KEEP=1 keeps the work directory,
# BENCH_METRICS=1 runs the shipper with metrics on (health server and Prometheus endpoint).
#
# Each run uses a fresh throwaway cluster and a fresh mock cluster (topic `bench`, 3 partitions):
#   1. catch-up throughput: both slots (`ship`: the pgstream plugin, or wal2json when it is not installed; `recv`:
#      wal2json) exist before BENCH_ROWS rows are committed in transactions of 1000 rows. Then, one after the other
#      (the order alternates between runs): pg_recvlogical --endpos to /dev/null, and `pgstream run` with the Kafka
#      writer (default batching: 100 events, 1.5MiB, 1s; acks=all, idempotent). The Kafka side is done when the
#      slot's confirmed_flush_lsn passes the backlog's end (status updates every 10ms here, the slot polled every
#      5ms: the clock's resolution, not the shipper's speed, at a 50ms interval was 5% of the run), i.e. when every
#      row's delivery report came back; then the topic's high watermarks are checked to hold >= BENCH_ROWS
#      records. (Reading the backlog back from the mock is no clock: its per-partition log is bounded, and a
#      lagging reader loses the oldest records.) rows/s = BENCH_ROWS / seconds, startup included.
#   2. commit→Kafka latency: with the shipper live, BENCH_LATENCY_ROWS rows are committed in transactions of 50
#      (about 8k rows/s), each stamped with clock_timestamp() at insert; the consumer compares the stamp with the
#      time it reads the record from Kafka. That is an upper bound of commit→delivery report (it adds one fetch).
# Prints each run, then medians and the ratio.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/bench/lib.sh"
bench_find_cli kafka
MOCK=$(dirname "$BIN")/pgstream-kafka-mock
[ -x "$MOCK" ] || { echo "bench/kafka: $MOCK not built (make shipper)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-bench-kafka.XXXXXX")
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

g++ -O2 -std=c++17 -Wall -o "$WORK/topic_reader" "$ROOT/bench/kafka/topic_reader.cpp" -lrdkafka++ -lrdkafka

stop_shipper() {
  kill -TERM "$SHIPPER_PID" 2>/dev/null || true
  local rc=0
  wait "$SHIPPER_PID" || rc=$?
  SHIPPER_PID=
  [ "$rc" = 0 ] || echo "  (shipper exited with $rc; see its log)" >&2
}

: >"$WORK/results"
for run in $(seq 1 "$RUNS"); do
  bench_start_cluster "$run"

  "$MOCK" --brokers 3 --topic bench --partitions 3 >"$WORK/mock$run.out" 2>"$WORK/mock$run.log" &
  MOCK_PID=$!
  wait_for_file "$WORK/mock$run.out" 30 || { echo "kafka mock did not start" >&2; exit 1; }
  bootstrap=$(head -1 "$WORK/mock$run.out")

  bench_write_backlog
  bench_listener_env >"$WORK/ship$run.env"
  cat >>"$WORK/ship$run.env" <<ENV
PGSTREAM_KAFKA_SERVERS=$bootstrap
PGSTREAM_KAFKA_TOPIC_NAME=bench
PGSTREAM_CHECKPOINT_INTERVAL=10ms
ENV

  measure_ship() {
    # Done when the slot is confirmed past the backlog: every row's delivery report (acks=all) came back.
    local t0 t1
    t0=$(now)
    "$BIN" run -c "$WORK/ship$run.env" >/dev/null 2>>"$WORK/ship$run.log" &
    SHIPPER_PID=$!
    bench_wait_confirmed ship 300 "$SHIPPER_PID" || { echo "shipper catch-up failed" >&2; tail "$WORK/ship$run.log" >&2; exit 1; }
    t1=$(now)
    stop_shipper
    ship_s=$(elapsed "$t0" "$t1")
    local written
    written=$("$WORK/topic_reader" "$bootstrap" bench 3 0 x offsets "$WORK/ready$run.o" | sed 's/records=//')
    [ "$written" -ge "$ROWS" ] || { echo "kafka holds $written records, expected at least $ROWS" >&2; exit 1; }
  }
  if [ $((run % 2)) = 1 ]; then measure_recv; measure_ship; else measure_ship; measure_recv; fi
  measure_ceiling

  # Latency: shipper live, rows stamped at insert, read back from Kafka as they arrive.
  rm -f "$WORK/ready$run.l"
  "$WORK/topic_reader" "$bootstrap" bench 3 "$LATENCY_ROWS" '"bench_latency"' latency "$WORK/ready$run.l" >"$WORK/latency$run" &
  reader_pid=$!
  wait_for_file "$WORK/ready$run.l" 30 || { echo "topic reader did not start" >&2; exit 1; }
  "$BIN" run -c "$WORK/ship$run.env" >/dev/null 2>>"$WORK/ship$run.log" &
  SHIPPER_PID=$!
  bench_wait_caught_up
  bench_write_rows bench_latency "$LATENCY_ROWS" 50 0.005
  wait_for_file "$WORK/latency$run" 300 || { echo "latency rows never arrived" >&2; exit 1; }
  wait "$reader_pid" || true
  stop_shipper
  kill -TERM "$MOCK_PID"; wait "$MOCK_PID" || true; MOCK_PID=
  bench_stop_cluster
  bench_record_run "$run" "$WORK/latency$run" \
    'pgstream→kafka %s rows/s (%ss), pg_recvlogical+wal2json→/dev/null %s rows/s (%ss), commit→kafka p50 %s ms p99 %s ms'
done

bench_medians
echo
echo "catch-up, $ROWS rows, median of $RUNS: pgstream run ($PLUGIN) → Kafka (3 mock brokers, acks=all) $ship_med rows/s, pg_recvlogical+wal2json → /dev/null $recv_med rows/s"
echo "ratio pgstream→kafka / pg_recvlogical→/dev/null: ${ratio}x"
bench_print_ceiling
echo "commit→read back from Kafka, $LATENCY_ROWS rows at ~8k rows/s, median of $RUNS: p50 $p50_med ms, p99 $p99_med ms"
