#!/usr/bin/env bash
# pgstream-search-mock's own CPU per _bulk item, in instructions (callgrind): the mock takes N and then 2N
# _bulk requests of 1000 `index` items each, shaped like the search indexer's (bench/search's table: bigint,
# bigint, text of 64 characters; external versions; documents keyed by column pgstream ids with `_table` and
# `_change_version`, about 314 KiB per request), into an index created like the indexer creates one (settings,
# a strict mapping with column aliases, the schema alias), then one _refresh (so that each run refreshes every
# document once, whatever the periodic refresher managed). The per-item cost is (I(2N) - I(N)) / (N * 1000):
# start-up and index creation cancel out; shutdown is not counted.
#
#   bench/search-mock-cost.sh     (needs valgrind, curl and the built pgstream-search-mock; not part of make check)
#
# Environment: BENCH_REQUESTS (N, default 10), SEARCH_MOCK_BIN (default build/shipper/pgstream-search-mock),
# BENCH_KEEP=1 keeps the work directory, BENCH_ANNOTATE=1 prints callgrind_annotate's inclusive costs of the
# 2N run, BENCH_FILTER_PATH=EXPRESSIONS sends each _bulk as _bulk?filter_path=EXPRESSIONS (URL-encoded as
# given), e.g. BENCH_FILTER_PATH='errors,items.*.status,items.*.error', what Logstash and the indexer send (the
# last answer must then show no item error: no "errors":true, no "error").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${BENCH_REQUESTS:-10}
MOCK=${SEARCH_MOCK_BIN:-$ROOT/build/shipper/pgstream-search-mock}
BULK_PATH=/_bulk
[ -z "${BENCH_FILTER_PATH:-}" ] || BULK_PATH="/_bulk?filter_path=$BENCH_FILTER_PATH"
[ -x "$MOCK" ] || { echo "bench/search-mock-cost: $MOCK not built" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "bench/search-mock-cost: valgrind is not installed" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench/search-mock-cost: curl is not installed" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-bench-search-mock.XXXXXX")
MOCK_PID=
cleanup() {
  [ -z "$MOCK_PID" ] || kill -TERM "$MOCK_PID" 2>/dev/null || true
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

TABLE=dc3ghlb4qcijqnq265f0  # a table pgstream id; its columns are $TABLE-1 .. $TABLE-3

# The index as mapping.cpp's index_create_body() writes it for bench_rows (OpenSearch).
cat >"$WORK/create.json" <<JSON
{"settings":{"index.number_of_shards":1,"index.number_of_replicas":1,"index.mapping.total_fields.limit":2000,"index.knn":true,"index.knn.algo_param.ef_search":100},"mappings":{"dynamic":"strict","properties":{"_table":{"type":"keyword"},"_change_version":{"type":"long"},"$TABLE-1":{"type":"long"},"$TABLE-2":{"type":"long"},"$TABLE-3":{"type":"keyword","ignore_above":8191,"fields":{"text":{"type":"text"}}},"bench_rows":{"properties":{"id":{"type":"alias","path":"$TABLE-1"},"payload":{"type":"alias","path":"$TABLE-3"},"written_us":{"type":"alias","path":"$TABLE-2"}}}}},"aliases":{"public":{}}}
JSON

# Request j (0-based) indexes rows j*1000+1 .. j*1000+1000 as new documents with increasing external versions,
# lines as search_store.cpp writes them (to the schema's alias, as documents.cpp addresses them).
for j in $(seq 0 $((2 * N - 1))); do
  awk -v j="$j" -v t="$TABLE" 'BEGIN {
    for (i = 1; i <= 1000; i++) {
      row = j * 1000 + i
      version = 24000000000 + row * 64
      payload = sprintf("payload of row %010d abcdefghijklmnopqrstuvwxyz0123456789", row)
      printf "{\"index\":{\"_index\":\"public\",\"_id\":\"%s_%d\",\"version\":%d,\"version_type\":\"external\"}}\n", t, row, version
      printf "{\"_table\":\"%s\",\"%s-1\":%d,\"%s-2\":%d,\"%s-3\":\"%s\",\"_change_version\":%d}\n", t, t, row, t, 1764680000000000 + row * 37, t, payload, version
    }
  }' >"$WORK/bulk$j.ndjson"
done
echo "bench/search-mock-cost: $(wc -c <"$WORK/bulk0.ndjson") bytes per 1000-item _bulk request" >&2

# Runs the mock under callgrind, creates the index, sends requests 0 .. $1-1 on one connection; prints the
# instruction total.
measure() { # requests name
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$2.callgrind" "$MOCK" --listen 127.0.0.1:0 \
    >"$WORK/$2.port" 2>"$WORK/$2.log" &
  MOCK_PID=$!
  local deadline=$((SECONDS + 60))
  until [ -s "$WORK/$2.port" ]; do
    [ $SECONDS -lt $deadline ] || { echo "$2: the mock did not start" >&2; cat "$WORK/$2.log" >&2; exit 1; }
    sleep 0.2
  done
  local url="http://127.0.0.1:$(head -1 "$WORK/$2.port")"
  curl -sf -o /dev/null -X PUT -H 'Content-Type: application/json' --data-binary @"$WORK/create.json" "$url/public-1"
  local args=() j
  for j in $(seq 0 $(($1 - 1))); do
    [ "$j" = 0 ] || args+=(--next)
    args+=(-sf -o "$WORK/$2.answer" -H 'Content-Type: application/x-ndjson' --data-binary @"$WORK/bulk$j.ndjson"
      "$url$BULK_PATH")
  done
  curl "${args[@]}"
  # The last answer: there (curl -f writes none for an HTTP error), with no item error; unfiltered, it also
  # says "errors":false (a filter_path may leave `errors` out).
  if [ ! -s "$WORK/$2.answer" ] || grep -q -e '"errors":true' -e '"error":' "$WORK/$2.answer" ||
    { [ -z "${BENCH_FILTER_PATH:-}" ] && ! grep -q '"errors":false' "$WORK/$2.answer"; }; then
    echo "$2: _bulk errors" >&2; head -c 600 "$WORK/$2.answer" 2>/dev/null >&2; exit 1
  fi
  # Every document is made searchable before the count stops, so that each run counts one refresh per
  # document: the periodic refresh (every second) leaves the documents of the last second or so unrefreshed,
  # a share that varied with the machine's speed and moved the per-item figure by several hundred.
  curl -sf -o /dev/null -X POST "$url/_refresh"
  # The count stops before the shutdown: the bench/search mock's CPU is taken before it is stopped, and freeing
  # every document at exit would add to the per-item cost.
  callgrind_control --dump "$MOCK_PID" >/dev/null 2>&1
  kill -TERM "$MOCK_PID"
  wait "$MOCK_PID" || true
  MOCK_PID=
  awk '/^(summary|totals):/ { print $2; exit }' "$WORK/$2.callgrind.1"
}

one=$(measure "$N" n)
two=$(measure $((2 * N)) 2n)
awk -v a="$one" -v b="$two" -v n="$N" 'BEGIN {
  printf "pgstream-search-mock: I(N=%d requests) = %d, I(2N) = %d: %.0f instructions per _bulk item\n", n, a, b, (b - a) / (n * 1000)
}'
[ -z "${BENCH_FILTER_PATH:-}" ] || echo "pgstream-search-mock: each _bulk with filter_path=$BENCH_FILTER_PATH"
if [ -n "${BENCH_ANNOTATE:-}" ]; then
  callgrind_annotate --inclusive=yes "$WORK/2n.callgrind.1" | head -80
fi
