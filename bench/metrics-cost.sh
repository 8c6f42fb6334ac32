#!/usr/bin/env bash
# The cost of metrics per row, in instructions: the whole `pgstream run` process under callgrind catching up the
# same backlog twice (the same binary, the same WAL through two copies of one slot), once with metrics off and once
# with the health server and the Prometheus endpoint on (every instrument records; nothing scrapes).
#
#   bench/metrics-cost.sh     (needs valgrind and the built CLI, or PGSTREAM_BIN; not part of make check)
#
# Environment: BENCH_ROWS (default 20000), PGSTREAM_BIN, BENCH_KEEP=1 keeps the work directory.
# Prints the instruction totals (callgrind's "summary") and the difference per row.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-bench-metrics.XXXXXX")
chmod 711 "$WORK"
BENCH_ROWS=${BENCH_ROWS:-20000}
source "$ROOT/bench/lib.sh"
CLUSTER_DIR=
SHIPPER_PID=
trap bench_cleanup EXIT
command -v valgrind >/dev/null || { echo "bench/metrics-cost: valgrind is not installed" >&2; exit 2; }
bench_find_cli metrics-cost

bench_start_cluster 1
# Both runs read the same WAL: the second slot is a copy of the shipper's, made before the backlog.
psql -c "select pg_copy_logical_replication_slot('ship', 'ship_metrics')" >/dev/null
bench_write_rows bench_rows "$ROWS" 1000 0

measure() { # name slot extra-settings...
  local name=$1 slot=$2
  shift 2
  { bench_listener_env | sed "s/SLOT_NAME=ship\$/SLOT_NAME=$slot/"; echo "PGSTREAM_STDOUT_WRITER_ENABLED=true"
    echo "PGSTREAM_STDOUT_WRITER_FILE=$WORK/$name.jsonl"; printf '%s\n' "$@"; } >"$WORK/$name.env"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.callgrind" \
    "$BIN" run -c "$WORK/$name.env" >"$WORK/$name.log" 2>&1 &
  SHIPPER_PID=$!
  local deadline=$((SECONDS + 900))
  local written=0
  until [ "$written" -ge "$ROWS" ]; do
    [ $SECONDS -lt $deadline ] || { echo "$name: catch-up timed out" >&2; tail "$WORK/$name.log" >&2; exit 1; }
    kill -0 "$SHIPPER_PID" 2>/dev/null || { echo "$name: the shipper exited" >&2; tail "$WORK/$name.log" >&2; exit 1; }
    sleep 0.5
    written=$(grep -c '"bench_rows"' "$WORK/$name.jsonl" 2>/dev/null) || written=0
  done
  kill -TERM "$SHIPPER_PID"
  wait "$SHIPPER_PID" || { echo "$name: the shipper exited with $?" >&2; tail "$WORK/$name.log" >&2; exit 1; }
  SHIPPER_PID=
  sed -n 's/^summary: //p' "$WORK/$name.callgrind"
}

off=$(measure off ship)
on=$(measure on ship_metrics PGSTREAM_HEALTH_CHECK_ENABLED=true PGSTREAM_HEALTH_CHECK_ADDRESS=127.0.0.1:0 \
  PGSTREAM_METRICS_PROMETHEUS_ENABLED=true)
awk -v off="$off" -v on="$on" -v rows="$ROWS" 'BEGIN {
  printf "instructions, %d rows: metrics off %.1fM, metrics on %.1fM: %+.0f per row (%+.1f%%)\n",
    rows, off / 1e6, on / 1e6, (on - off) / rows, (on - off) * 100 / off }'
