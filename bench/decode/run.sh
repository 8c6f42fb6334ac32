#!/usr/bin/env bash
# Decoding benchmark: the pgstream output plugin against its peers on the same WAL.
#
#   bench/decode/run.sh            (uses its own throwaway cluster; needs `make install` of the extension)
#
# Environment: BENCH_ROWS (inserted rows, default 150000; updates = ROWS/2, deletes = ROWS/5, so the default makes
# 255,000 changes), BENCH_RUNS (default 3), BENCH_KEEP_CLUSTER=1 keeps the cluster directory.
#
# One cluster, one 7-column table, one slot per plugin created before the workload, then:
#   * SQL decoding: `select count(*), sum(octet_length(data)) from pg_logical_slot_peek_changes(...)` (peek_binary for
#     pgoutput), median wall-clock seconds of the whole psql call;
#   * walsender: pg_recvlogical --endpos to /dev/null from a fresh copy of the slot each run;
#   BENCH_RUNS rounds, each round measuring every mode once (interleaved, so load changes hit all modes alike).
# Prints a table and the ratios the project targets (see bench/README.md).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROWS=${BENCH_ROWS:-150000}
RUNS=${BENCH_RUNS:-3}

DIR=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-bench.XXXXXX")
cleanup() { "$ROOT/scripts/pg-cluster.sh" stop "$DIR"; [ -n "${BENCH_KEEP_CLUSTER:-}" ] || rm -rf "$DIR"; }
trap cleanup EXIT
PORT=$("$ROOT/scripts/pg-cluster.sh" start "$DIR")
export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres PGDATABASE=bench
# Output functions depend on these; pin them so every plugin formats the same values.
export PGOPTIONS="-c TimeZone=UTC -c DateStyle=ISO,MDY -c extra_float_digits=1 -c bytea_output=hex"
psql -X -q -d postgres -c "create database bench"

have_pgstream=0
[ -f "$(pg_config --pkglibdir)/pgstream.so" ] && have_pgstream=1

psql -X -q -v ON_ERROR_STOP=1 <<SQL
create table bench_rows (id bigint primary key, a text, b numeric, c timestamptz, d bool, e jsonb, f text[]);
create publication bench_pub for table bench_rows;
select pg_create_logical_replication_slot('s_pgoutput', 'pgoutput');
select pg_create_logical_replication_slot('s_test_decoding', 'test_decoding');
select pg_create_logical_replication_slot('s_wal2json', 'wal2json');
SQL
if [ $have_pgstream = 1 ]; then
  psql -X -q -v ON_ERROR_STOP=1 -c "select pg_copy_logical_replication_slot('s_wal2json', 's_pgstream', false, 'pgstream')"
fi

echo "workload: $ROWS inserts, $((ROWS / 2)) updates, $((ROWS / 5)) deletes in transactions of 25000 changes" >&2
psql -X -q -v ON_ERROR_STOP=1 <<SQL
do \$\$ begin
  for chunk in 0 .. ($ROWS - 1) / 25000 loop
    insert into bench_rows
      select g, 'row number ' || g || ' with some text', g * 1.25 + 0.001,
             '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second', g % 2 = 0,
             jsonb_build_object('id', g, 'tags', jsonb_build_array('a', 'b'), 'ok', true),
             array['x', 'y "quoted"', g::text]
      from generate_series(chunk * 25000 + 1, least((chunk + 1) * 25000, $ROWS)) g;
    commit;
  end loop;
  for chunk in 0 .. ($ROWS / 2 - 1) / 25000 loop
    update bench_rows set a = a || ' updated', d = not d, b = b + 1
      where id between chunk * 50000 + 1 and least((chunk + 1) * 50000, $ROWS) and id % 2 = 1;
    commit;
  end loop;
  delete from bench_rows where id % 5 = 0;
  commit;
end \$\$;
SQL
END_LSN=$(psql -X -At -c "checkpoint" -c "select pg_current_wal_flush_lsn()" | tail -1)
CHANGES=$(psql -X -At -c "select count(*) from pg_logical_slot_peek_changes('s_test_decoding', '$END_LSN', NULL) where data like 'table %'")
echo "changes decoded by test_decoding: $CHANGES, end LSN $END_LSN" >&2

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
now() { date +%s.%N; }

declare -A SECONDS_OF BYTES_OF ROWS_OF TIMES_OF KIND_OF WHAT_OF
order=()

peek() { # slot options...
  local slot=$1; shift
  local args=""
  for o in "$@"; do args+=", '$o'"; done
  echo "select count(*), coalesce(sum(octet_length(data)), 0) from pg_logical_slot_peek_changes('$slot', '$END_LSN', NULL$args)"
}

add_sql() { order+=("$1"); KIND_OF[$1]=sql; WHAT_OF[$1]=$2; }
add_stream() { order+=("$1"); KIND_OF[$1]=stream; WHAT_OF[$1]=$2; }

add_sql "pgoutput (binary, proto 1)" \
  "select count(*), coalesce(sum(octet_length(data)), 0) from pg_logical_slot_peek_binary_changes('s_pgoutput', '$END_LSN', NULL, 'proto_version', '1', 'publication_names', 'bench_pub')"
add_sql "test_decoding" "$(peek s_test_decoding)"
add_sql "wal2json v1" "$(peek s_wal2json format-version 1)"
add_sql "wal2json v2" "$(peek s_wal2json format-version 2)"
if [ $have_pgstream = 1 ]; then
  add_sql "pgstream v1" "$(peek s_pgstream format-version 1)"
  add_sql "pgstream v2" "$(peek s_pgstream format-version 2)"
  add_sql "pgstream v2 pack 65536 (SQL)" "$(peek s_pgstream format-version 2 pgstream-pack-bytes 65536)"
fi
add_stream "stream wal2json v2" "s_wal2json -o format-version=2"
if [ $have_pgstream = 1 ]; then
  add_stream "stream pgstream v2" "s_pgstream -o format-version=2"
  add_stream "stream pgstream v2 pack 65536" "s_pgstream -o format-version=2 -o pgstream-pack-bytes=65536"
fi

measure_once() { # label -> appends one wall-clock time to TIMES_OF[label]
  local label=$1 start result source copy
  if [ "${KIND_OF[$label]}" = sql ]; then
    start=$(now)
    result=$(psql -X -At -F ' ' -c "${WHAT_OF[$label]}")
    TIMES_OF[$label]+="$(echo "$(now) - $start" | bc -l) "
    ROWS_OF[$label]=${result%% *}
    BYTES_OF[$label]=${result##* }
  else
    # A fresh copy of the slot per run: streaming confirms the position and would leave nothing for the next run.
    read -r source opts <<<"${WHAT_OF[$label]}"
    copy="r_${source}_run"
    psql -X -q -c "select pg_copy_logical_replication_slot('$source', '$copy', false)" >/dev/null
    start=$(now)
    # shellcheck disable=SC2086  # option words are split on purpose
    pg_recvlogical -d bench --slot "$copy" --start --endpos "$END_LSN" --no-loop -f /dev/null $opts
    TIMES_OF[$label]+="$(echo "$(now) - $start" | bc -l) "
    psql -X -q -c "select pg_drop_replication_slot('$copy')" >/dev/null
  fi
}

# Rounds: every mode once per round, so a load change on a shared machine hits all modes alike.
for round in $(seq "$RUNS"); do
  echo "round $round of $RUNS" >&2
  for label in "${order[@]}"; do measure_once "$label"; done
done
for label in "${order[@]}"; do
  # shellcheck disable=SC2086
  SECONDS_OF[$label]=$(printf '%s\n' ${TIMES_OF[$label]} | median)
  # shellcheck disable=SC2086
  printf '  %-34s %8.3f s  (runs: %s)\n' "$label" "${SECONDS_OF[$label]}" "$(printf '%.3f ' ${TIMES_OF[$label]})" >&2
done

echo
echo "decode benchmark: $CHANGES changes (7-column table), median of $RUNS runs"
printf '%-34s %10s %14s %10s %12s\n' "plugin / mode" "seconds" "output bytes" "rows" "changes/s"
for label in "${order[@]}"; do
  printf '%-34s %10.3f %14s %10s %12.0f\n' "$label" "${SECONDS_OF[$label]}" "${BYTES_OF[$label]:--}" \
    "${ROWS_OF[$label]:--}" "$(echo "$CHANGES / ${SECONDS_OF[$label]}" | bc -l)"
done

ratio() { # name numerator denominator target-op target
  local name=$1 a=$2 b=$3 op=$4 target=$5 r verdict
  if [ -z "${SECONDS_OF[$a]:-}" ] || [ -z "${SECONDS_OF[$b]:-}" ]; then
    printf '%-52s %8s\n' "$name" "n/a"; return
  fi
  r=$(echo "${SECONDS_OF[$a]} / ${SECONDS_OF[$b]}" | bc -l)
  if [ "$op" = le ]; then verdict=$(echo "$r <= $target" | bc -l); else verdict=$(echo "$r >= $target" | bc -l); fi
  [ "$verdict" = 1 ] && verdict=met || verdict=MISSED
  printf '%-52s %8.3f   (target %s %s: %s)\n' "$name" "$r" "$([ "$op" = le ] && echo '<=' || echo '>=')" "$target" "$verdict"
}
echo
echo "ratios (time over time, lower is faster; throughput = inverse time ratio):"
ratio "pgstream v2 / wal2json v2 (SQL)" "pgstream v2" "wal2json v2" le 0.75
ratio "pgstream v2 / pgoutput (SQL)" "pgstream v2" "pgoutput (binary, proto 1)" le 1.05
ratio "pgstream v1 / wal2json v1 (SQL)" "pgstream v1" "wal2json v1" le 1.00
ratio "walsender throughput pgstream packed / wal2json v2" "stream wal2json v2" "stream pgstream v2 pack 65536" ge 3
ratio "walsender throughput pgstream v2 / wal2json v2" "stream wal2json v2" "stream pgstream v2" ge 1
[ $have_pgstream = 1 ] || echo "pgstream.so is not installed: pgstream rows skipped (make install)"
