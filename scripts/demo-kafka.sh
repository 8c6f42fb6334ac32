#!/usr/bin/env bash
# `make demo-kafka`: PostgreSQL → Kafka → stdout in two shipper processes, on a throwaway PostgreSQL and a
# 3-broker librdkafka mock cluster (a real Kafka-protocol broker, in memory).
#   DEMO_SECONDS=N  how long the workload keeps writing (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DEMO_SECONDS=${DEMO_SECONDS:-15}

if [ -z "${PGSTREAM_TEST_PGURL:-}" ]; then
  exec scripts/pg-cluster.sh with "$0" "$@"
fi

source scripts/demo-common.sh
shipper=$BUILD/shipper/pgstream
mock=$BUILD/shipper/pgstream-kafka-mock

"$mock" --brokers 3 --topic pgstream --partitions 3 >"$work/mock.out" 2>"$work/mock.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/mock.out" ] && break; sleep 0.1; done
servers=$(head -1 "$work/mock.out")
[ -n "$servers" ] || { cat "$work/mock.err" >&2; exit 1; }
say "Kafka mock cluster (3 brokers, topic pgstream with 3 partitions) at $servers"

"$shipper" init --pgurl "$PGSTREAM_TEST_PGURL" >&2
say "pgstream init done; writer: postgres slot → Kafka (key = schema)"
PGSTREAM_POSTGRES_LISTENER_URL=$PGSTREAM_TEST_PGURL PGSTREAM_KAFKA_SERVERS=$servers PGSTREAM_KAFKA_TOPIC_NAME=pgstream \
  "$shipper" run --log-level warn &
pids+=($!)
say "reader: Kafka consumer group 'demo' → stdout JSON lines"
env -u PGSTREAM_TEST_PGURL PGSTREAM_KAFKA_SERVERS=$servers PGSTREAM_KAFKA_TOPIC_NAME=pgstream \
  PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID=demo PGSTREAM_STDOUT_WRITER_ENABLED=true \
  "$shipper" run --log-level warn &
pids+=($!)

sleep 2
sql "CREATE SCHEMA shop; CREATE TABLE shop.orders (id bigint PRIMARY KEY, item text, qty int)"
sql "CREATE TABLE public.events (id bigserial PRIMARY KEY, note text)"
end=$((SECONDS + DEMO_SECONDS))
i=0
while [ $SECONDS -lt $end ]; do
  i=$((i + 1))
  sql "INSERT INTO shop.orders VALUES ($i, 'item $i', $i); INSERT INTO public.events (note) VALUES ('order $i')"
  [ $((i % 4)) -eq 0 ] && sql "UPDATE shop.orders SET qty = qty + 10 WHERE id = $((i - 1))"
  [ $i -eq 3 ] && sql "ALTER TABLE shop.orders ADD COLUMN shipped boolean DEFAULT false"
  sleep 1
done
sleep 3
say "done; stopping the shipper processes and the mock cluster"
