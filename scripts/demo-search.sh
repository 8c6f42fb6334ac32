#!/usr/bin/env bash
# `make demo-search`: PostgreSQL → shipper → pgstream-search-mock (the OpenSearch test server), on a throwaway
# PostgreSQL. A small workload with a schema change runs, then queries show the documents (by column id and by
# name through the aliases) and the `pgstream` index of applied schema versions.
#   DEMO_SECONDS=N  how long the workload keeps writing (default 8)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DEMO_SECONDS=${DEMO_SECONDS:-8}

if [ -z "${PGSTREAM_TEST_PGURL:-}" ]; then
  exec scripts/pg-cluster.sh with "$0" "$@"
fi

source scripts/demo-common.sh
shipper=$BUILD/shipper/pgstream
mock=$BUILD/shipper/pgstream-search-mock

"$mock" --listen 127.0.0.1:0 >"$work/mock.out" 2>"$work/mock.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/mock.out" ] && break; sleep 0.1; done
port=$(head -1 "$work/mock.out")
[ -n "$port" ] || { cat "$work/mock.err" >&2; exit 1; }
store=http://127.0.0.1:$port
say "search test server (OpenSearch 2.x flavor) at $store"

"$shipper" init --pgurl "$PGSTREAM_TEST_PGURL" >&2
say "pgstream init done; shipper: postgres slot → search indexer"
sql "CREATE SCHEMA shop; CREATE TABLE shop.orders (id bigint PRIMARY KEY, item text, qty int, placed timestamptz DEFAULT now())"
PGSTREAM_POSTGRES_LISTENER_URL=$PGSTREAM_TEST_PGURL PGSTREAM_OPENSEARCH_STORE_URL=$store \
  PGSTREAM_SEARCH_INDEXER_BATCH_TIMEOUT=200ms PGSTREAM_SEARCH_INDEXER_DEAD_LETTER_FILE=$work/dead.jsonl \
  "$shipper" run --log-level warn &
pids+=($!)

end=$((SECONDS + DEMO_SECONDS))
i=0
name_column=item  # renamed to product on the way: no reindex, the alias follows
while [ $SECONDS -lt $end ]; do
  i=$((i + 1))
  sql "INSERT INTO shop.orders (id, $name_column, qty) VALUES ($i, 'item $i', $i)"
  [ $((i % 4)) -eq 0 ] && sql "UPDATE shop.orders SET qty = qty + 10 WHERE id = $((i - 1))"
  [ $((i % 5)) -eq 0 ] && sql "DELETE FROM shop.orders WHERE id = $((i - 2))"
  [ $i -eq 3 ] && sql "ALTER TABLE shop.orders ADD COLUMN shipped boolean DEFAULT false"
  [ $i -eq 6 ] && sql "ALTER TABLE shop.orders RENAME COLUMN item TO product" && name_column=product
  sleep 0.5
done
# The last writes are indexed within the batch timeout; wait until the index has as many documents as the table.
rows=$(psql -X -qAt -c "SELECT count(*) FROM shop.orders")
for _ in $(seq 100); do
  curl -s -XPOST "$store/shop/_refresh" >/dev/null
  docs=$(curl -s "$store/shop/_count" | jq -r '.count // 0')
  [ "$docs" = "$rows" ] && break
  sleep 0.1
done
say "table shop.orders has $rows rows, index shop has $docs documents"

say "the first 3 documents of index shop (fields are column pgstream ids):"
curl -s -XPOST "$store/shop/_search" -H 'Content-Type: application/json' \
  -d '{"query":{"match_all":{}},"sort":[{"_id":"asc"}],"size":3,"version":true}' | jq '.hits.hits[] | {_id, _version, _source}'
say "a query by name through the alias orders.product (the renamed column):"
curl -s -XPOST "$store/shop/_search" -H 'Content-Type: application/json' \
  -d '{"query":{"term":{"orders.product":"item 1"}}}' | jq -c '.hits.hits[] | {_id, _source}'
say "the pgstream index (one document per applied schema version):"
curl -s -XPOST "$store/pgstream/_search" -H 'Content-Type: application/json' \
  -d '{"query":{"match_all":{}},"sort":[{"version":"asc"}],"size":20}' \
  | jq -c '.hits.hits[]._source | {schema_name, version, created_at, tables: (.schema | fromjson | [.tables[]? | {name, columns: [.columns[].name]}])}'
say "done; stopping the shipper and the test server"
