#!/usr/bin/env bash
# Throwaway PostgreSQL 15 cluster for tests, benchmarks and the demo.
#
#   pg-cluster.sh start DIR [PORT]   initdb + start; prints "PORT" on stdout
#   pg-cluster.sh stop DIR           fast shutdown (never fails)
#   pg-cluster.sh restart DIR        stop + start on the same port
#   pg-cluster.sh with CMD ARGS...   start a cluster in a temp dir, run CMD with PGHOST/PGPORT/PGUSER/
#                                    PGDATABASE/PGSTREAM_TEST_PGURL exported, stop and remove it afterwards
#                                    (also on failure or Ctrl-C); exits with CMD's status
#
# Postgres refuses to run as root, so as root the cluster is owned by and run as the `postgres` user.
# The server lists pgstream and wal2json in output_plugin_libraries: PostgreSQL 15.19+ refuses any
# logical-decoding output plugin not listed there.
set -euo pipefail

PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
# pg_config may be the client-only wrapper from postgresql-common; the server binaries live here on Debian.
[ -x "$PG_BINDIR/initdb" ] || PG_BINDIR=/usr/lib/postgresql/15/bin

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

start() {
  local dir=$1 port=${2:-}
  [ -n "$port" ] || port=$(free_port)
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; chmod 700 "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$PG_BINDIR/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
wal_sender_timeout = 60s
fsync = off
synchronous_commit = on
full_page_writes = off
shared_buffers = 128MB
max_connections = 60
output_plugin_libraries = 'pgoutput, test_decoding, wal2json, pgstream'
log_min_messages = warning
logging_collector = off
CONF
    echo "$port" > "$dir/port"
  fi
  port=$(cat "$dir/port")
  as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { tail -20 "$dir/server.log" >&2; return 1; }
  echo "$port"
}

stop() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
    || as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}

with_cluster() {
  WITH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pgstream-pg.XXXXXX")
  local dir=$WITH_DIR
  trap 'stop "$WITH_DIR"; rm -rf "$WITH_DIR"' EXIT
  trap 'exit 130' INT TERM
  local port
  port=$(start "$dir")
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
  export PGSTREAM_TEST_PGURL="postgres://postgres@127.0.0.1:$port/postgres"
  export PGSTREAM_TEST_PGDIR=$dir
  local rc=0
  "$@" || rc=$?
  return $rc
}

cmd=${1:-}
shift || true
case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  restart) stop "$1"; start "$1" >/dev/null ;;
  with) with_cluster "$@" ;;
  *) echo "usage: $0 start DIR [PORT] | stop DIR | restart DIR | with CMD [ARGS...]" >&2; exit 2 ;;
esac
