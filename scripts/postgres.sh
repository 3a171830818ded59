#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1 for the test-suite (installs the server from
# Debian's packages if missing) and prints the URL to export as DOORSTEP_TEST_POSTGRES.
# Usage: eval "$(scripts/postgres.sh)"     (port: DOORSTEP_PG_PORT, default 54329)
set -euo pipefail
port="${DOORSTEP_PG_PORT:-54329}"
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/pg_ctl" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
dir="${DOORSTEP_PG_DIR:-/tmp/doorstep-pg-$port}"
run() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if ! run "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  rm -rf "$dir"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  run "$bindir/initdb" -D "$dir" -A trust -U postgres >/dev/null
  run "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >&2
fi
"$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='doorstep_test'" | grep -q 1 \
  || "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres doorstep_test
echo "export DOORSTEP_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port/doorstep_test"
