#!/usr/bin/env bash
# Installs the Debian packages pgstream needs, only those missing. Works as root or through sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git python3 procps
  postgresql-15 postgresql-server-dev-15 postgresql-15-wal2json libpq-dev
  librdkafka-dev libmimalloc-dev rapidjson-dev libcurl4-openssl-dev libcli11-dev libyaml-cpp-dev libcpp-httplib-dev prometheus-cpp-dev prometheus
  libgtest-dev libgmock-dev clang-format
  wrk  # bench/webhooks: the HTTP peer of the webhook benchmark
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

# PostgreSQL 15.19+ is the build that knows output_plugin_libraries; an older installed server must be upgraded.
if dpkg --compare-versions "$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || echo 0)" lt 15.19; then
  missing+=(postgresql-15 postgresql-server-dev-15)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 2; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package creates and starts a default cluster; pgstream never uses it and it would hold port 5432.
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1, $2}' | while read -r ver name; do
    $SUDO pg_ctlcluster "$ver" "$name" stop || true
  done
fi
