#!/usr/bin/env bash
# Webhook benchmark: `pgstream run` (slot → webhook notifier) POSTing to a local receiver
# (bench/webhooks/receiver.cpp, cpp-httplib), against `wrk` POSTing the same body to the same receiver, in the
# same run.
#
#   bench/webhooks/run.sh     (needs the built CLI and wrk: make shipper; scripts/install-deps.sh installs wrk)
#
# Environment: BENCH_ROWS (backlog rows, default 20000), BENCH_LATENCY_ROWS (default 2000), BENCH_RUNS (default 3),
# BENCH_SUBSCRIBERS (default "1 10"), PGSTREAM_BIN, BENCH_KEEP=1 keeps the work directory.
#
# For each subscriber count S and run, on a fresh throwaway cluster:
#   1. notifications/s: S subscriptions (URLs /hook/1../hook/S of the one receiver) to public tables; BENCH_ROWS
#      rows committed in transactions of 1000 before the shipper starts; done when the slot is confirmed past the
#      backlog's end, i.e. when every subscription has every event (acknowledged only then). notifications/s =
#      BENCH_ROWS × S / seconds, start-up included. Default settings (10 requests in flight).
#   2. commit→receiver latency: with the shipper live, BENCH_LATENCY_ROWS rows into bench_latency in transactions
#      of 10 (about 1k rows/s), each stamped with clock_timestamp() at insert; the receiver compares the stamp with
#      its arrival time (p50/p99 over every delivery of every subscription).
#   3. wrk -d5s POSTing a body taken from step 1 (a bench_rows event, same size) to the same receiver, with as many
#      connections as the notifier can have requests in flight: min(S, 10), since each subscription gets its
#      next event only after the previous one's answer (commit order): requests/s.
#      Also the backlog's rate between its first and last arrival at the receiver (no start-up, like wrk's).
# Prints each run, then medians and the ratio notifications/s ÷ wrk requests/s (target ≥ 0.5, start-up
# included), and the same ratio for the first-to-last-arrival rate.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export BENCH_ROWS=${BENCH_ROWS:-20000}
export BENCH_LATENCY_ROWS=${BENCH_LATENCY_ROWS:-2000}
source "$ROOT/bench/lib.sh"
bench_find_cli webhooks
command -v wrk >/dev/null || { echo "bench/webhooks: wrk not installed (scripts/install-deps.sh)" >&2; exit 2; }
SUBSCRIBERS=${BENCH_SUBSCRIBERS:-1 10}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-bench-webhooks.XXXXXX")
chmod 711 "$WORK"
CLUSTER_DIR=
SHIPPER_PID=
RECEIVER_PID=
cleanup() {
  [ -z "$SHIPPER_PID" ] || kill -KILL "$SHIPPER_PID" 2>/dev/null || true
  [ -z "$RECEIVER_PID" ] || kill -TERM "$RECEIVER_PID" 2>/dev/null || true
  [ -z "$CLUSTER_DIR" ] || "$ROOT/scripts/pg-cluster.sh" stop "$CLUSTER_DIR"
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

g++ -O2 -std=c++17 -Wall -o "$WORK/receiver" "$ROOT/bench/webhooks/receiver.cpp" -lcpp-httplib -lpthread

stats() { curl -s "http://127.0.0.1:$receiver_port/stats"; }
field() { sed -E "s/.*$1=([0-9.]+).*/\1/"; }

for subscribers in $SUBSCRIBERS; do
  : >"$WORK/results$subscribers"
  for run in $(seq 1 "$RUNS"); do
    bench_start_cluster "$subscribers-$run"
    rm -f "$WORK/port" "$WORK/sample"
    "$WORK/receiver" "$WORK/port" bench "$WORK/sample" 2>"$WORK/receiver.log" &
    RECEIVER_PID=$!
    wait_for_file "$WORK/port" 30 || { echo "receiver did not start" >&2; exit 1; }
    receiver_port=$(cat "$WORK/port")
    for s in $(seq 1 "$subscribers"); do
      psql -c "insert into pgstream.webhook_subscriptions (url, schema_name) values ('http://127.0.0.1:$receiver_port/hook/$s', 'public')"
    done
    bench_write_backlog
    bench_listener_env >"$WORK/ship.env"
    cat >>"$WORK/ship.env" <<ENV
PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_URL=$url
PGSTREAM_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32
PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_ADDRESS=127.0.0.1:0
PGSTREAM_CHECKPOINT_INTERVAL=10ms
ENV
    t0=$(now)
    "$BIN" run -c "$WORK/ship.env" >/dev/null 2>>"$WORK/ship.log" &
    SHIPPER_PID=$!
    bench_wait_confirmed ship 600 "$SHIPPER_PID" || { echo "shipper catch-up failed" >&2; tail "$WORK/ship.log" >&2; exit 1; }
    t1=$(now)
    ship_s=$(elapsed "$t0" "$t1")
    backlog_stats=$(stats)
    delivered=$(echo "$backlog_stats" | field requests)
    # The same backlog between its first and last arrival: without the shipper's start-up (connecting,
    # reading the subscriptions, the walsender's first decoding), like wrk's 5 s of requests only.
    steady=$(echo "$backlog_stats" | awk -v n="$ROWS" -v s="$subscribers" '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      d = (v["rows_last_us"] - v["rows_first_us"]) / 1e6; printf "%.0f", (d > 0 ? n * s / d : 0) }')
    expected=$((ROWS * subscribers))
    [ "$delivered" -ge "$expected" ] || { echo "receiver got $delivered notifications, expected $expected" >&2; exit 1; }
    rate=$(awk -v n="$expected" -v s="$ship_s" 'BEGIN { printf "%.0f", n / s }')

    bench_wait_caught_up
    bench_write_rows bench_latency "$LATENCY_ROWS" 10 0.01
    want=$((LATENCY_ROWS * subscribers))
    for _ in $(seq 600); do [ "$(stats | field latencies)" -ge "$want" ] && break; sleep 0.1; done
    latency=$(stats)
    kill -TERM "$SHIPPER_PID"; wait "$SHIPPER_PID" || true; SHIPPER_PID=

    # wrk: the same receiver, the same body, as many connections as the notifier may have requests in flight.
    connections=$((subscribers < 10 ? subscribers : 10))
    body_bytes=$(wc -c <"$WORK/sample")
    lua_body=$(sed 's/\\/\\\\/g; s/"/\\"/g' "$WORK/sample")
    cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "$lua_body"
wrk.headers["Content-Type"] = "application/json"
LUA
    wrk_rps=$(wrk -t"$((connections < 2 ? 1 : 2))" -c"$connections" -d5s -s "$WORK/post.lua" "http://127.0.0.1:$receiver_port/hook/wrk" | awk '/Requests\/sec/ { printf "%.0f", $2 }')
    kill -TERM "$RECEIVER_PID"; wait "$RECEIVER_PID" || true; RECEIVER_PID=
    bench_stop_cluster

    p50=$(echo "$latency" | field p50_ms)
    p99=$(echo "$latency" | field p99_ms)
    echo "$rate $wrk_rps $p50 $p99 $steady" >>"$WORK/results$subscribers"
    printf "subscribers %d run %d (plugin %s): %s notifications/s (%s rows in %ss; %s/s first to last arrival), wrk %s requests/s (%s connections, body %s bytes), commit→receiver p50 %s ms p99 %s ms\n" \
      "$subscribers" "$run" "$PLUGIN" "$rate" "$ROWS" "$ship_s" "$steady" "$wrk_rps" "$connections" "$body_bytes" "$p50" "$p99"
  done
done

echo
for subscribers in $SUBSCRIBERS; do
  r=$WORK/results$subscribers
  rate_med=$(awk '{ print $1 }' "$r" | median)
  wrk_med=$(awk '{ print $2 }' "$r" | median)
  p50_med=$(awk '{ print $3 }' "$r" | median)
  p99_med=$(awk '{ print $4 }' "$r" | median)
  ratio=$(awk -v a="$rate_med" -v b="$wrk_med" 'BEGIN { printf "%.2f", a / b }')
  met=MISSED
  awk -v x="$ratio" 'BEGIN { exit !(x >= 0.5) }' && met=met
  steady_med=$(awk '{ print $5 }' "$r" | median)
  steady_ratio=$(awk -v a="$steady_med" -v b="$wrk_med" 'BEGIN { printf "%.2f", a / b }')
  echo "$subscribers subscriber(s), median of $RUNS: $rate_med notifications/s, wrk $wrk_med requests/s, ratio $ratio (target >= 0.5: $met); first to last arrival $steady_med notifications/s, ratio $steady_ratio; commit→receiver p50 $p50_med ms, p99 $p99_med ms"
done
