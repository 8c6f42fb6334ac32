#!/usr/bin/env bash
# `make bench`: every benchmark in turn, each against its peers in the same run (see bench/README.md).
#   bench/run.sh [decode] [ddl] [shipper] [kafka] [webhooks] [snapshot]   (default: all six)
set -uo pipefail
cd "$(dirname "$0")"
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(decode ddl shipper kafka webhooks snapshot)
status=0
for suite in "${suites[@]}"; do
  [ -x "$suite/run.sh" ] || { echo "bench: no benchmark named $suite" >&2; exit 2; }
  echo "==== bench/$suite ===="
  "$suite/run.sh" || status=1
done
exit $status
