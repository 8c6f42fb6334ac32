#!/usr/bin/env bash
# Differential test: the pgstream output plugin against the installed wal2json 2.5, byte for byte.
#
#   scripts/pg-cluster.sh with regress/differential/run.sh [CORPUS_NAME_SUBSTRING...]
#
# Needs PGHOST/PGPORT/PGUSER of a cluster with wal_level=logical and both plugins in output_plugin_libraries.
# For every corpus/NN_name.sql: a fresh database runs the part before `-- @@ start decoding`, then a wal2json slot
# is created and copied to a pgstream slot (both start at the same LSN), the rest of the script runs, and every
# option set of option-sets.txt peeks both slots; difftool.py compares the rows (see its docstring for the
# documented deliberate differences). Prints `ok corpus/set` or `FAIL corpus/set` + a short diff per case and ends
# with `differential: N passed, N failed`.
#
# Environment:
#   DIFF_PLUGIN=wal2json   self-test of the harness: wal2json on both sides (default: pgstream)
#   DIFF_KEEP=DIR          keep the peek outputs in DIR (default: a temp dir removed on exit)
#   DIFF_JOBS=N            corpora run in parallel (default 2)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PLUGIN=${DIFF_PLUGIN:-pgstream}
JOBS=${DIFF_JOBS:-2}
: "${PGHOST:?run inside scripts/pg-cluster.sh with}" "${PGPORT:?}"
export PGUSER=${PGUSER:-postgres}

if [ "$PLUGIN" = pgstream ] && [ ! -f "$(pg_config --pkglibdir)/pgstream.so" ]; then
  echo "FAIL pgstream.so is not installed in $(pg_config --pkglibdir) (make install)"
  echo "differential: 0 passed, 1 failed"
  exit 1
fi

if [ -n "${DIFF_KEEP:-}" ]; then WORK=$DIFF_KEEP; mkdir -p "$WORK"
else WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-diff.XXXXXX"); trap 'rm -rf "$WORK"' EXIT; fi
chmod 777 "$WORK"

# The decoding sessions (both plugins) see exactly these settings; output functions depend on them.
# logical_decoding_work_mem is at its minimum so the large transactions spill to disk while decoding.
PEEK_OPTIONS="-c TimeZone=Asia/Kolkata -c DateStyle=ISO,MDY -c extra_float_digits=0 -c bytea_output=hex"
PEEK_OPTIONS+=" -c IntervalStyle=postgres -c lc_monetary=C -c lc_numeric=C -c search_path=public"
PEEK_OPTIONS+=" -c logical_decoding_work_mem=64kB -c client_encoding=UTF8 -c client_min_messages=warning"

load_walsender_sets() { # prints "label|both|extra" lines of walsender-option-sets.txt
  grep -v '^[[:space:]]*\(#\|$\)' "$HERE/walsender-option-sets.txt"
}

# Walsender cases of walsender-option-sets.txt: stream fresh copies of both slots with pg_recvlogical, then
# difftool.py compares them all in one go. One psql call per case drops the previous copies and makes the next
# ones (one -c per statement: a slot copy cannot follow another in one transaction), so a corpus holds at most
# four slots (max_replication_slots is 20 and corpora run in parallel).
stream_corpus() { # name db corpus-file dir endpos
  local name=$1 db=$2 file=$3 dir=$4 endpos=$5 label both extra drops=()
  while IFS='|' read -r label both extra; do
    label=$(echo $label)
    if [ "$PLUGIN" != pgstream ] && [ -n "$(echo $extra)" ]; then
      echo "skip $name/$label (self-test: pgstream-only options)" >"$dir/$label.skip"
      continue
    fi
    psql -X -q -d "$db" "${drops[@]}" \
      -c "select pg_copy_logical_replication_slot('w_$name', 'sw_$name', false)" \
      -c "select pg_copy_logical_replication_slot('p_$name', 'sp_$name', false)" </dev/null >/dev/null 2>"$dir/$label.copy.err" \
      || echo "cannot copy the slots: $(cat "$dir/$label.copy.err")" >>"$dir/$label.failed"
    drops=(-c "select pg_drop_replication_slot('sw_$name')" -c "select pg_drop_replication_slot('sp_$name')")
    # shellcheck disable=SC2086  # option words are split on purpose
    PGOPTIONS="$PEEK_OPTIONS" timeout 60 pg_recvlogical -d "$db" --slot "sw_$name" --start --endpos "$endpos" \
      --no-loop -f "$dir/$label.w" $both </dev/null 2>"$dir/$label.w.err" || echo "wal2json: exit $?" >>"$dir/$label.failed"
    # shellcheck disable=SC2086
    PGOPTIONS="$PEEK_OPTIONS" timeout 60 pg_recvlogical -d "$db" --slot "sp_$name" --start --endpos "$endpos" \
      --no-loop -f "$dir/$label.p" $both $extra </dev/null 2>"$dir/$label.p.err" || echo "pgstream: exit $?" >>"$dir/$label.failed"
  done < <(load_walsender_sets)
  [ ${#drops[@]} = 0 ] || psql -X -q -d "$db" "${drops[@]}" </dev/null >/dev/null
  python3 "$HERE/difftool.py" stream-check "$file" "$dir" "$HERE/walsender-option-sets.txt"
}

run_corpus() { # corpus file -> writes $WORK/<name>/report
  local file=$1 name db dir upto setup body dboptions client_encoding
  name=$(basename "$file" .sql)
  db="diff_$name"
  dir=$WORK/$name
  rm -rf "$dir"; mkdir -p "$dir"; chmod 777 "$dir"
  {
    # `-- @@ database: <CREATE DATABASE options>` in a corpus overrides the encoding/locale.
    dboptions=$(sed -n 's/^-- @@ database: //p' "$file" | head -1)
    [ -n "$dboptions" ] || dboptions="encoding 'UTF8' lc_collate 'C.UTF-8' lc_ctype 'C.UTF-8'"
    psql -X -q -d postgres -c "drop database if exists \"$db\"" -c "create database \"$db\" template template0 $dboptions" >"$dir/setup.log" 2>&1 \
      || { echo "FAIL $name/setup: cannot create database"; cat "$dir/setup.log"; return; }
    if grep -q -- '^-- @@ start decoding' "$file"; then
      setup=$(sed '/^-- @@ start decoding/,$d' "$file")
      body=$(sed -n '/^-- @@ start decoding/,$p' "$file")
    else
      setup=""; body=$(cat "$file")
    fi
    if ! psql -X -q -v ON_ERROR_STOP=1 -d "$db" >>"$dir/setup.log" 2>&1 <<<"$setup"; then
      echo "FAIL $name/setup: the corpus setup failed"; tail -5 "$dir/setup.log"; return
    fi
    if ! psql -X -q -v ON_ERROR_STOP=1 -d "$db" >>"$dir/setup.log" 2>&1 <<SQL
select pg_create_logical_replication_slot('w_$name', 'wal2json');
select pg_copy_logical_replication_slot('w_$name', 'p_$name', false, '$PLUGIN');
SQL
    then echo "FAIL $name/setup: cannot create the slots"; tail -5 "$dir/setup.log"; return; fi
    if ! psql -X -q -v ON_ERROR_STOP=1 -d "$db" >>"$dir/setup.log" 2>&1 <<<"$body"; then
      echo "FAIL $name/script: the corpus script failed"; tail -5 "$dir/setup.log"
      psql -X -q -d "$db" -c "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name in ('w_$name', 'p_$name')" >/dev/null 2>&1
      return
    fi
    # A non-transactional message at the very end is not flushed yet; a checkpoint flushes the WAL.
    upto=$(psql -X -At -d "$db" -c "checkpoint" -c "select pg_current_wal_flush_lsn()" | tail -1)
    python3 "$HERE/difftool.py" plan "$file" "$HERE/option-sets.txt" "$dir" || { echo "FAIL $name/plan"; return; }
    # `-- @@ client-encoding: X` in a corpus: the SQL API converts peeked text to the client encoding.
    client_encoding=$(sed -n 's/^-- @@ client-encoding: //p' "$file" | head -1)
    PGOPTIONS="$PEEK_OPTIONS${client_encoding:+ -c client_encoding=$client_encoding}" psql -X -At -0 -F $'\x1f' -d "$db" -v upto="$upto" -v w_slot="w_$name" -v p_slot="p_$name" \
      -f "$dir/peeks.sql" >"$dir/stdout" 2>"$dir/stderr"
    python3 "$HERE/difftool.py" check "$file" "$dir"
    stream_corpus "$name" "$db" "$file" "$dir" "$upto"
    psql -X -q -d postgres -c "select pg_drop_replication_slot('w_$name')" -c "select pg_drop_replication_slot('p_$name')" \
      -c "drop database \"$db\"" >/dev/null 2>&1
  } >"$dir/report" 2>&1
}

corpora=()
for file in "$HERE"/corpus/*.sql; do
  if [ $# -gt 0 ]; then
    match=0; for want in "$@"; do [[ $(basename "$file") == *"$want"* ]] && match=1; done
    [ $match = 1 ] || continue
  fi
  corpora+=("$file")
done

running=0
for file in "${corpora[@]}"; do
  run_corpus "$file" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

passed=0; failed=0
for file in "${corpora[@]}"; do
  name=$(basename "$file" .sql)
  report=$WORK/$name/report
  cat "$report"
  if [ -f "$WORK/$name/counts" ] && ! grep -q '^FAIL '"$name"'/\(setup\|script\|plan\)' "$report"; then
    read -r p f <"$WORK/$name/counts"
    if [ -f "$WORK/$name/stream-counts" ]; then
      read -r sp sf <"$WORK/$name/stream-counts"; p=$((p + sp)); f=$((f + sf))
    else
      f=$((f + 1))
    fi
    passed=$((passed + p)); failed=$((failed + f))
  else
    failed=$((failed + 1))
  fi
done
echo "differential: $passed passed, $failed failed"
[ "$failed" = 0 ]
