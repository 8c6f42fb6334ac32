#!/usr/bin/env bash
# Kafka benchmark: `pgstream run` (slot → Kafka batch writer → librdkafka mock cluster with 3 brokers) against
# pg_recvlogical + wal2json to /dev/null over the same WAL, in the same run.
#
#   bench/kafka/run.sh     (needs the built CLI and pgstream-kafka-mock: make shipper; not part of make check)
#
# Environment: BENCH_ROWS (backlog rows, default 200000), BENCH_LATENCY_ROWS (default 20000), BENCH_RUNS (default 3),
# PGSTREAM_BIN (the CLI; pgstream-kafka-mock is looked up next to it), BENCH_KEEP=1 keeps the work directory.
#
# Each run uses a fresh throwaway cluster and a fresh mock cluster (topic `bench`, 3 partitions):
#   1. catch-up throughput: both slots (`ship`: the pgstream plugin, or wal2json when it is not installed; `recv`:
#      wal2json) exist before BENCH_ROWS rows are committed in transactions of 1000 rows. Then, one after the other
#      (the order alternates between runs): pg_recvlogical --endpos to /dev/null, and `pgstream run` with the Kafka
#      writer (default batching: 100 events, 1.5MiB, 1s; acks=all, idempotent). The Kafka side is done when the
#      slot's confirmed_flush_lsn passes the backlog's end (status updates every 50ms here), i.e. when every
#      row's delivery report came back; then the topic's high watermarks are checked to hold >= BENCH_ROWS
#      records. (Reading the backlog back from the mock is no clock: its per-partition log is bounded, and a
#      lagging reader loses the oldest records.) rows/s = BENCH_ROWS / seconds, startup included.
#   2. commit→Kafka latency: with the shipper live, BENCH_LATENCY_ROWS rows are committed in transactions of 50
#      (about 8k rows/s), each stamped with clock_timestamp() at insert; the consumer compares the stamp with the
#      time it reads the record from Kafka. That is an upper bound of commit→delivery report (it adds one fetch).
# Prints each run, then medians and the ratio.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROWS=${BENCH_ROWS:-200000}
LATENCY_ROWS=${BENCH_LATENCY_ROWS:-20000}
RUNS=${BENCH_RUNS:-3}
BIN=${PGSTREAM_BIN:-}
if [ -z "$BIN" ]; then
  for candidate in "$ROOT/build/shipper/pgstream" "$ROOT/build/pgstream"; do
    [ -x "$candidate" ] && { BIN=$candidate; break; }
  done
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "bench/kafka: pgstream CLI not built (make shipper, or set PGSTREAM_BIN)" >&2; exit 2; }
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
PLUGIN=wal2json
[ -f "$(pg_config --pkglibdir)/pgstream.so" ] && PLUGIN=pgstream

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wait_for_file() { # path timeout-seconds
  local deadline=$((SECONDS + $2))
  while [ ! -s "$1" ]; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.02
  done
}
stop_shipper() {
  kill -TERM "$SHIPPER_PID" 2>/dev/null || true
  local rc=0
  wait "$SHIPPER_PID" || rc=$?
  SHIPPER_PID=
  [ "$rc" = 0 ] || echo "  (shipper exited with $rc; see its log)" >&2
}

: >"$WORK/results"
for run in $(seq 1 "$RUNS"); do
  CLUSTER_DIR=$WORK/pg$run
  port=$("$ROOT/scripts/pg-cluster.sh" start "$CLUSTER_DIR")
  url="postgres://postgres@127.0.0.1:$port/postgres"
  psql() { command psql -X -q -v ON_ERROR_STOP=1 -d "$url" "$@"; }
  psql -c "create table bench_rows (id bigint primary key, written_us bigint not null, payload text not null)" \
       -c "create table bench_latency (id bigint primary key, written_us bigint not null, payload text not null)"
  "$BIN" init --pgurl "$url" --slot ship --plugin "$PLUGIN" >"$WORK/init$run.log" 2>&1 \
    || { cat "$WORK/init$run.log" >&2; exit 1; }
  psql -c "select pg_create_logical_replication_slot('recv', 'wal2json')" >/dev/null

  "$MOCK" --brokers 3 --topic bench --partitions 3 >"$WORK/mock$run.out" 2>"$WORK/mock$run.log" &
  MOCK_PID=$!
  wait_for_file "$WORK/mock$run.out" 30 || { echo "kafka mock did not start" >&2; exit 1; }
  bootstrap=$(head -1 "$WORK/mock$run.out")

  psql <<SQL
do \$\$ begin
  for chunk in 0 .. ($ROWS - 1) / 1000 loop
    insert into bench_rows
      select g, (extract(epoch from clock_timestamp()) * 1e6)::bigint, 'payload of row ' || g
      from generate_series(chunk * 1000 + 1, least((chunk + 1) * 1000, $ROWS)) g;
    commit;
  end loop;
end \$\$;
SQL
  end_lsn=$(psql -Atc "select pg_current_wal_lsn()")

  cat >"$WORK/ship$run.env" <<ENV
PGSTREAM_POSTGRES_LISTENER_URL=$url
PGSTREAM_POSTGRES_LISTENER_SLOT_NAME=ship
PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL=$url
PGSTREAM_KAFKA_SERVERS=$bootstrap
PGSTREAM_KAFKA_TOPIC_NAME=bench
PGSTREAM_CHECKPOINT_INTERVAL=50ms
ENV

  measure_recv() {
    local t0 t1
    t0=$(now)
    pg_recvlogical -d "$url" --slot recv --start --endpos="$end_lsn" -o format-version=2 -f /dev/null
    t1=$(now)
    recv_s=$(elapsed "$t0" "$t1")
  }
  measure_ship() {
    # Done when the slot is confirmed past the backlog: every row's delivery report (acks=all) came back.
    local t0 t1
    t0=$(now)
    "$BIN" run -c "$WORK/ship$run.env" >/dev/null 2>>"$WORK/ship$run.log" &
    SHIPPER_PID=$!
    local deadline=$((SECONDS + 300))
    until [ "$(psql -Atc "select confirmed_flush_lsn >= '$end_lsn' from pg_replication_slots where slot_name = 'ship'")" = t ]; do
      [ $SECONDS -lt $deadline ] || { echo "shipper catch-up timed out" >&2; tail "$WORK/ship$run.log" >&2; exit 1; }
      sleep 0.02
    done
    t1=$(now)
    stop_shipper
    ship_s=$(elapsed "$t0" "$t1")
    local written
    written=$("$WORK/topic_reader" "$bootstrap" bench 3 0 x offsets "$WORK/ready$run.o" | sed 's/records=//')
    [ "$written" -ge "$ROWS" ] || { echo "kafka holds $written records, expected at least $ROWS" >&2; exit 1; }
  }
  if [ $((run % 2)) = 1 ]; then measure_recv; measure_ship; else measure_ship; measure_recv; fi

  # Latency: shipper live, rows stamped at insert, read back from Kafka as they arrive.
  rm -f "$WORK/ready$run.l"
  "$WORK/topic_reader" "$bootstrap" bench 3 "$LATENCY_ROWS" '"bench_latency"' latency "$WORK/ready$run.l" >"$WORK/latency$run" &
  reader_pid=$!
  wait_for_file "$WORK/ready$run.l" 30 || { echo "topic reader did not start" >&2; exit 1; }
  "$BIN" run -c "$WORK/ship$run.env" >/dev/null 2>>"$WORK/ship$run.log" &
  SHIPPER_PID=$!
  for _ in $(seq 1 300); do
    [ "$(psql -Atc "select active from pg_replication_slots where slot_name = 'ship'")" = t ] && break
    sleep 0.1
  done
  psql <<SQL
do \$\$ begin
  for batch in 0 .. ($LATENCY_ROWS - 1) / 50 loop
    insert into bench_latency
      select g, (extract(epoch from clock_timestamp()) * 1e6)::bigint, 'payload of row ' || g
      from generate_series(batch * 50 + 1, least((batch + 1) * 50, $LATENCY_ROWS)) g;
    commit;
    perform pg_sleep(0.005);
  end loop;
end \$\$;
SQL
  wait_for_file "$WORK/latency$run" 300 || { echo "latency rows never arrived" >&2; exit 1; }
  wait "$reader_pid" || true
  stop_shipper
  kill -TERM "$MOCK_PID"; wait "$MOCK_PID" || true; MOCK_PID=
  "$ROOT/scripts/pg-cluster.sh" stop "$CLUSTER_DIR"
  CLUSTER_DIR=

  p50=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' "$WORK/latency$run")
  p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' "$WORK/latency$run")
  ship_rps=$(awk -v r="$ROWS" -v s="$ship_s" 'BEGIN { printf "%.0f", r / s }')
  recv_rps=$(awk -v r="$ROWS" -v s="$recv_s" 'BEGIN { printf "%.0f", r / s }')
  echo "$ship_rps $recv_rps $p50 $p99" >>"$WORK/results"
  printf 'run %d (plugin %s): pgstream→kafka %s rows/s (%ss), pg_recvlogical+wal2json→/dev/null %s rows/s (%ss), commit→kafka p50 %s ms p99 %s ms\n' \
    "$run" "$PLUGIN" "$ship_rps" "$ship_s" "$recv_rps" "$recv_s" "$p50" "$p99"
done

ship_med=$(awk '{ print $1 }' "$WORK/results" | median)
recv_med=$(awk '{ print $2 }' "$WORK/results" | median)
p50_med=$(awk '{ print $3 }' "$WORK/results" | median)
p99_med=$(awk '{ print $4 }' "$WORK/results" | median)
ratio=$(awk -v a="$ship_med" -v b="$recv_med" 'BEGIN { printf "%.2f", a / b }')
echo
echo "catch-up, $ROWS rows, median of $RUNS: pgstream run ($PLUGIN) → Kafka (3 mock brokers, acks=all) $ship_med rows/s, pg_recvlogical+wal2json → /dev/null $recv_med rows/s"
echo "ratio pgstream→kafka / pg_recvlogical→/dev/null: ${ratio}x"
echo "commit→read back from Kafka, $LATENCY_ROWS rows at ~8k rows/s, median of $RUNS: p50 $p50_med ms, p99 $p99_med ms"
