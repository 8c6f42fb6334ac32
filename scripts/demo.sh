#!/usr/bin/env bash
# `make demo`: a throwaway PostgreSQL with the pgstream extension, a slot on the pgstream plugin, and live
# changes (rows and schema changes) streamed as JSON lines while a small workload runs.
#   DEMO_SECONDS=N  how long the workload keeps writing (default 20); Ctrl-C stops earlier.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DEMO_SECONDS=${DEMO_SECONDS:-20}

if [ -z "${PGSTREAM_TEST_PGURL:-}" ]; then
  exec scripts/pg-cluster.sh with "$0" "$@"
fi

say() { printf '\033[1;34m-- %s\033[0m\n' "$*" >&2; }
sql() { psql -X -q -v ON_ERROR_STOP=1 -c "$1"; }

say "PostgreSQL $(psql -XAtc 'show server_version') on port $PGPORT (throwaway, removed on exit)"
say "output_plugin_libraries = $(psql -XAtc 'show output_plugin_libraries')"
sql "CREATE EXTENSION pgstream"
slot=$(psql -XAtc "SELECT pgstream.init()")
say "slot $slot created on plugin pgstream"

shipper=$BUILD/shipper/pgstream
reader_pid=
if [ -x "$shipper" ]; then
  say "streaming with: $shipper run (listener: postgres slot, processor: stdout JSON lines)"
  PGSTREAM_POSTGRES_LISTENER_URL=$PGSTREAM_TEST_PGURL PGSTREAM_POSTGRES_LISTENER_SLOT_NAME=$slot \
    PGSTREAM_STDOUT_WRITER_ENABLED=true PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL=$PGSTREAM_TEST_PGURL \
    "$shipper" run --log-level warn &
  reader_pid=$!
else
  say "shipper not built; streaming the plugin's wal2json v2 records with pg_recvlogical"
  pg_recvlogical -d "$PGSTREAM_TEST_PGURL" --slot "$slot" --start -o format-version=2 -o include-lsn=1 -f - &
  reader_pid=$!
fi
trap 'kill -INT $reader_pid 2>/dev/null; wait $reader_pid 2>/dev/null || true' EXIT

sleep 1
say "workload: CREATE TABLE, INSERT, UPDATE, ALTER TABLE, DELETE, TRUNCATE, a logical message"
sql "CREATE TABLE public.orders (id bigint PRIMARY KEY, customer text NOT NULL, total numeric(10,2), placed_at timestamptz DEFAULT now())"
end=$((SECONDS + DEMO_SECONDS))
i=0
customer_column=customer
while [ $SECONDS -lt $end ]; do
  i=$((i + 1))
  sql "INSERT INTO public.orders (id, $customer_column, total) VALUES ($i, 'customer $i', $i * 1.5)"
  [ $((i % 3)) -eq 0 ] && sql "UPDATE public.orders SET total = total + 1 WHERE id = $((i - 1))"
  [ $i -eq 4 ] && sql "ALTER TABLE public.orders ADD COLUMN status text DEFAULT 'new'"
  if [ $i -eq 6 ]; then
    sql "ALTER TABLE public.orders RENAME COLUMN customer TO customer_name"
    customer_column=customer_name
  fi
  [ $((i % 5)) -eq 0 ] && sql "DELETE FROM public.orders WHERE id = $((i - 4))"
  [ $i -eq 8 ] && sql "SELECT pg_logical_emit_message(true, 'demo', 'hello from a transaction')" >/dev/null
  sleep 1
done
sql "TRUNCATE public.orders"
sleep 2
say "done; tearing down"
