#!/usr/bin/env bash
# `make demo-webhooks`: PostgreSQL → webhooks on a throwaway PostgreSQL. A local receiver
# (bench/webhooks/receiver.cpp) prints what it gets; two subscriptions are made through the subscription API
# (one signed, for shop.orders inserts; one for everything in public), then a small workload runs.
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

g++ -O2 -std=c++17 -o "$work/receiver" bench/webhooks/receiver.cpp -lcpp-httplib -lpthread
"$work/receiver" "$work/port" print &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
receiver=http://127.0.0.1:$(cat "$work/port")
say "webhook receiver at $receiver (prints each delivery)"

"$shipper" init --pgurl "$PGSTREAM_TEST_PGURL" >&2
sql "CREATE SCHEMA shop; CREATE TABLE shop.orders (id bigint PRIMARY KEY, item text, qty int)"
sql "CREATE TABLE public.events (id bigserial PRIMARY KEY, note text)"

token=demo-token-$RANDOM
api_port=$( (python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') )
say "pgstream run: postgres slot → webhook notifier (configs/pg2webhook.env), subscription API on 127.0.0.1:$api_port"
PGSTREAM_POSTGRES_LISTENER_URL=$PGSTREAM_TEST_PGURL PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL=$PGSTREAM_TEST_PGURL \
  PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_URL=$PGSTREAM_TEST_PGURL \
  PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_ADDRESS=127.0.0.1:$api_port PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_TOKEN=$token \
  "$shipper" run -c configs/pg2webhook.env --log-level warn &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$api_port/webhooks/subscriptions" -H "Authorization: Bearer $token" && break; sleep 0.1; done

subscribe() {
  say "subscribe $1"
  curl -s -H "Authorization: Bearer $token" -d "$1" "http://127.0.0.1:$api_port/webhooks/subscribe" >&2
  echo >&2
}
subscribe "{\"url\":\"$receiver/orders\",\"schema\":\"shop\",\"table\":\"orders\",\"event_types\":[\"I\"],\"secret\":\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}"
subscribe "{\"url\":\"$receiver/public\",\"schema\":\"public\"}"
say "without the token: $(curl -s -o /dev/null -w '%{http_code}' -d '{"url":"http://example.com/"}' "http://127.0.0.1:$api_port/webhooks/subscribe")"

end=$((SECONDS + DEMO_SECONDS))
i=0
while [ $SECONDS -lt $end ]; do
  i=$((i + 1))
  sql "INSERT INTO shop.orders VALUES ($i, 'item $i', $i); INSERT INTO public.events (note) VALUES ('order $i')"
  [ $((i % 4)) -eq 0 ] && sql "UPDATE shop.orders SET qty = qty + 10 WHERE id = $((i - 1))"
  sleep 1
done
sleep 2
say "dead letters: $(psql -XAtc 'SELECT count(*) FROM pgstream.webhook_dead_letters')"
say "done; stopping the shipper and the receiver"
