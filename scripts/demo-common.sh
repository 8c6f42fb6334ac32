# Sourced by the demo-<output> scripts once they run inside the throwaway cluster: messages, SQL, a work directory
# and the background processes they start (`pids+=($!)`), stopped newest first on exit so that each shipper drains
# into its target (broker, test server, receiver) while that target is still up.
say() { printf '\033[1;34m-- %s\033[0m\n' "$*" >&2; }
sql() { psql -X -q -v ON_ERROR_STOP=1 -c "$1"; }

work=$(mktemp -d)
pids=()
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
