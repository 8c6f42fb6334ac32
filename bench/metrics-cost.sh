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
BENCH_ROWS=${BENCH_ROWS:-20000}
source "$ROOT/bench/lib.sh"
bench_callgrind_init metrics-cost

bench_start_cluster 1
# Both runs read the same WAL: the second slot is a copy of the shipper's, made before the backlog.
psql -c "select pg_copy_logical_replication_slot('ship', 'ship_metrics')" >/dev/null
bench_write_rows bench_rows "$ROWS" 1000 0

off=$(bench_callgrind_run off ship "$ROWS")
on=$(bench_callgrind_run on ship_metrics "$ROWS" PGSTREAM_HEALTH_CHECK_ENABLED=true PGSTREAM_HEALTH_CHECK_ADDRESS=127.0.0.1:0 \
  PGSTREAM_METRICS_PROMETHEUS_ENABLED=true)
awk -v off="$off" -v on="$on" -v rows="$ROWS" 'BEGIN {
  printf "instructions, %d rows: metrics off %.1fM, metrics on %.1fM: %+.0f per row (%+.1f%%)\n",
    rows, off / 1e6, on / 1e6, (on - off) / rows, (on - off) * 100 / off }'
