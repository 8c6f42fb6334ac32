# Shared by bench/shipper/run.sh and bench/kafka/run.sh (sourced): the CLI lookup, timing helpers, the throwaway
# cluster with its two slots, the stamped-row workloads, the pg_recvlogical peer and the per-run/median summary.
# The sourcing script sets ROOT and WORK before calling these.

ROWS=${BENCH_ROWS:-200000}
LATENCY_ROWS=${BENCH_LATENCY_ROWS:-20000}
RUNS=${BENCH_RUNS:-3}

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

# The EXIT trap of a benchmark with one shipper and one cluster: kills the shipper, stops the cluster, removes the
# work directory (unless BENCH_KEEP).
bench_cleanup() {
  [ -z "${SHIPPER_PID:-}" ] || kill -KILL "$SHIPPER_PID" 2>/dev/null || true
  [ -z "${CLUSTER_DIR:-}" ] || "$ROOT/scripts/pg-cluster.sh" stop "$CLUSTER_DIR"
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}

# Sets BIN to the pgstream CLI (PGSTREAM_BIN, else the default build directory).
bench_find_cli() { # bench-name
  BIN=${PGSTREAM_BIN:-}
  if [ -z "$BIN" ]; then
    for candidate in "$ROOT/build/shipper/pgstream" "$ROOT/build/pgstream"; do
      [ -x "$candidate" ] && { BIN=$candidate; break; }
    done
  fi
  [ -n "$BIN" ] && [ -x "$BIN" ] || { echo "bench/$1: pgstream CLI not built (make shipper, or set PGSTREAM_BIN)" >&2; exit 2; }
  PLUGIN=wal2json
  [ -f "$(pg_config --pkglibdir)/pgstream.so" ] && PLUGIN=pgstream
  return 0
}

# A fresh cluster for run N with the tables bench_rows and bench_latency, the shipper's slot `ship` (made by
# `pgstream init` on $PLUGIN) and the peer's slot `recv` (wal2json). Sets CLUSTER_DIR, url and a psql function.
bench_start_cluster() { # run
  CLUSTER_DIR=$WORK/pg$1
  local port
  port=$("$ROOT/scripts/pg-cluster.sh" start "$CLUSTER_DIR")
  url="postgres://postgres@127.0.0.1:$port/postgres"
  psql() { command psql -X -q -v ON_ERROR_STOP=1 -d "$url" "$@"; }
  psql -c "create table bench_rows (id bigint primary key, written_us bigint not null, payload text not null)" \
       -c "create table bench_warmup (id serial primary key)" \
       -c "create table bench_latency (id bigint primary key, written_us bigint not null, payload text not null)"
  "$BIN" init --pgurl "$url" --slot ship --plugin "$PLUGIN" >"$WORK/init$1.log" 2>&1 \
    || { cat "$WORK/init$1.log" >&2; exit 1; }
  psql -c "select pg_create_logical_replication_slot('recv', 'wal2json')" >/dev/null
  [ "$PLUGIN" != pgstream ] || psql -c "select pg_create_logical_replication_slot('ceiling', 'pgstream')" >/dev/null
}

# Waits until the live shipper has confirmed a commit made now. A restarted walsender first re-reads the WAL
# between the slot's restart_lsn and its confirmed position (here the whole backlog) before it sends anything
# new; latency is measured in steady state only.
bench_wait_caught_up() {
  psql <<SQL
do \$\$
declare
  before pg_lsn := pg_current_wal_insert_lsn();
begin
  insert into bench_warmup default values;
  commit;
  for i in 1 .. 6000 loop
    exit when (select confirmed_flush_lsn > before from pg_replication_slots where slot_name = 'ship');
    perform pg_sleep(0.01);
  end loop;
end \$\$;
SQL
}

# CPU time the host gave to other guests while this machine's CPUs wanted it (steal, all CPUs), in seconds so far.
# Printed around runs so that a set taken while the host took CPU away can be told apart from one of a slower
# build. It does not show every kind of host noise: the same binary's CPU per row has moved by two thirds between
# sets minutes apart with no steal counted.
steal_seconds() { awk -v t="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f", $9 / t }' /proc/stat; }

# Waits until slot $1's confirmed_flush_lsn reaches $end_lsn, polled every 5 ms by a server-side loop (a psql
# process every few ms took CPU from the shipper being measured on 2 cores); fails after $2 seconds, or as soon
# as process $3 (the shipper, when given) has exited: a shipper that stopped on a bad setting would otherwise be
# waited for until the timeout. The loop runs in rounds of 5 s, so a run shorter than that is timed by one
# server-side loop, as before, and the process is looked at between rounds.
bench_wait_confirmed() { # slot timeout-seconds [pid]
  local waited=0 round error confirmed
  confirmed="(select confirmed_flush_lsn >= '$end_lsn' from pg_replication_slots where slot_name = '$1')"
  while [ "$waited" -lt "$2" ]; do
    round=$(($2 - waited < 5 ? $2 - waited : 5))
    # A round that ends unconfirmed raises 'not confirmed'; any other error (no server, say) ends the wait.
    error=$(psql -q -v ON_ERROR_STOP=1 -c "do \$\$ begin
      for i in 1 .. $((round * 200)) loop
        exit when $confirmed;
        perform pg_sleep(0.005);
      end loop;
      if not $confirmed then
        raise exception 'slot $1 not confirmed past $end_lsn';
      end if;
    end \$\$;" 2>&1 >/dev/null) && return 0
    case "$error" in
      *"not confirmed past"*) ;;
      *) echo "$error" >&2; return 1 ;;
    esac
    waited=$((waited + round))
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
      echo "slot $1: the shipper (pid $3) exited before confirming past $end_lsn" >&2
      return 1
    fi
  done
  echo "slot $1 not confirmed past $end_lsn after $2 s" >&2
  return 1
}

# The backlog both consumers read: ROWS rows in transactions of 1000. Sets end_lsn.
bench_write_backlog() {
  bench_write_rows bench_rows "$ROWS" 1000 0
  end_lsn=$(psql -Atc "select pg_current_wal_lsn()")
}

# The shipper's listener and translator settings for the `ship` slot (the output's lines follow).
bench_listener_env() {
  printf '%s\n' "PGSTREAM_POSTGRES_LISTENER_URL=$url" "PGSTREAM_POSTGRES_LISTENER_SLOT_NAME=ship" \
    "PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL=$url"
  # BENCH_METRICS=1: metrics on (the health server with the Prometheus endpoint on a free port), so every
  # instrument records as in production.
  if [ "${BENCH_METRICS:-0}" = 1 ]; then
    printf '%s\n' "PGSTREAM_HEALTH_CHECK_ENABLED=true" "PGSTREAM_HEALTH_CHECK_ADDRESS=127.0.0.1:0" \
      "PGSTREAM_METRICS_PROMETHEUS_ENABLED=true"
  fi
}

bench_stop_cluster() {
  "$ROOT/scripts/pg-cluster.sh" stop "$CLUSTER_DIR"
  CLUSTER_DIR=
}

# Commits COUNT rows into TABLE in transactions of PER_TXN, each row stamped with its insert time (µs), pausing
# SLEEP seconds between transactions.
bench_write_rows() { # table count per-txn sleep
  psql <<SQL
do \$\$ begin
  for chunk in 0 .. ($2 - 1) / $3 loop
    insert into $1
      select g, (extract(epoch from clock_timestamp()) * 1e6)::bigint, 'payload of row ' || g
      from generate_series(chunk * $3 + 1, least((chunk + 1) * $3, $2)) g;
    commit;
    perform pg_sleep($4);
  end loop;
end \$\$;
SQL
}

# The peer: pg_recvlogical + wal2json reading the `recv` slot to end_lsn, into /dev/null. Sets recv_s.
measure_recv() {
  local t0 t1
  t0=$(now)
  pg_recvlogical -d "$url" --slot recv --start --endpos="$end_lsn" -o format-version=2 -f /dev/null
  t1=$(now)
  recv_s=$(elapsed "$t0" "$t1")
}

# The ceiling: how fast the walsender alone delivers the backlog in the shipper's own format (pgstream plugin,
# packed records, as the shipper requests them) to a client that only discards it. No shipper can read the slot
# faster; the ratio shipper/ceiling shows how much of it the shipper reaches. Sets ceiling_s ("n/a" without the
# pgstream plugin).
measure_ceiling() {
  ceiling_s=n/a
  [ "$PLUGIN" = pgstream ] || return 0
  local t0 t1
  t0=$(now)
  # The options `pgstream run` starts replication with (postgres_listener.cpp).
  pg_recvlogical -d "$url" --slot ceiling --start --endpos="$end_lsn" -o format-version=2 \
    -o include-xids=1 -o include-timestamp=1 -o include-lsn=1 -o include-transaction=1 \
    -o pgstream-pack-bytes=65536 -o pgstream-transaction-fields-once=1 -f /dev/null
  t1=$(now)
  ceiling_s=$(elapsed "$t0" "$t1")
}

# Appends run N's rows/s and latency (from the reader's "p50_ms=… p99_ms=…" line) to $WORK/results and prints
# it with LABEL, a printf format taking: shipper rows/s, seconds, peer rows/s, seconds, p50, p99.
bench_record_run() { # run latency-file label
  local p50 p99 ship_rps recv_rps
  p50=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' "$2")
  p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' "$2")
  ship_rps=$(awk -v r="$ROWS" -v s="$ship_s" 'BEGIN { printf "%.0f", r / s }')
  recv_rps=$(awk -v r="$ROWS" -v s="$recv_s" 'BEGIN { printf "%.0f", r / s }')
  local ceiling_rps=n/a
  [ "${ceiling_s:-n/a}" = n/a ] || ceiling_rps=$(awk -v r="$ROWS" -v s="$ceiling_s" 'BEGIN { printf "%.0f", r / s }')
  echo "$ship_rps $recv_rps $p50 $p99 $ceiling_rps" >>"$WORK/results"
  printf "run %d (plugin %s): $3; walsender ceiling %s rows/s\n" "$1" "$PLUGIN" "$ship_rps" "$ship_s" "$recv_rps" \
    "$recv_s" "$p50" "$p99" "$ceiling_rps"
}

# Medians over the runs: sets ship_med, recv_med, p50_med, p99_med and ratio (shipper / peer rows/s).
bench_medians() {
  ship_med=$(awk '{ print $1 }' "$WORK/results" | median)
  recv_med=$(awk '{ print $2 }' "$WORK/results" | median)
  p50_med=$(awk '{ print $3 }' "$WORK/results" | median)
  p99_med=$(awk '{ print $4 }' "$WORK/results" | median)
  ratio=$(awk -v a="$ship_med" -v b="$recv_med" 'BEGIN { printf "%.2f", a / b }')
  ceiling_med=$(awk '$5 != "n/a" { print $5 }' "$WORK/results" | median)
  ceiling_ratios=n/a
  if [ "$ceiling_med" != n/a ]; then
    ceiling_ratios=$(awk -v c="$ceiling_med" -v s="$ship_med" -v r="$recv_med" \
      'BEGIN { printf "%.2fx pg_recvlogical+wal2json; shipper reaches %.0f%% of it", c / r, 100 * s / c }')
  fi
}

bench_print_ceiling() {
  echo "walsender ceiling (pg_recvlogical + pgstream packed, to /dev/null), median: $ceiling_med rows/s = $ceiling_ratios"
}

# For the callgrind scripts (bench/metrics-cost.sh, bench/row-cost.sh): the work directory, the cleanup trap,
# valgrind and the CLI.
bench_callgrind_init() { # bench-name
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-bench-$1.XXXXXX")
  chmod 711 "$WORK"
  CLUSTER_DIR=
  SHIPPER_PID=
  trap bench_cleanup EXIT
  command -v valgrind >/dev/null || { echo "bench/$1: valgrind is not installed" >&2; exit 2; }
  bench_find_cli "$1"
}

# `pgstream run` under callgrind on slot SLOT of the cluster, writing to $WORK/NAME.jsonl, until ROWS lines of
# bench_rows are written; then SIGTERM. Prints callgrind's instruction total. Further arguments are settings.
bench_callgrind_run() { # name slot rows settings...
  local name=$1 slot=$2 rows=$3
  shift 3
  { bench_listener_env | sed "s/SLOT_NAME=ship\$/SLOT_NAME=$slot/"; echo "PGSTREAM_STDOUT_WRITER_ENABLED=true"
    echo "PGSTREAM_STDOUT_WRITER_FILE=$WORK/$name.jsonl"; printf '%s\n' "$@"; } >"$WORK/$name.env"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.callgrind" \
    "$BIN" run -c "$WORK/$name.env" >"$WORK/$name.log" 2>&1 &
  SHIPPER_PID=$!
  local deadline=$((SECONDS + 900))
  local written=0
  until [ "$written" -ge "$rows" ]; do
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
