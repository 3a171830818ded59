#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1 for the test-suite (installs the server from
# Debian's packages if missing) and prints the URL to export as DOORSTEP_TEST_POSTGRES.
# It also accepts TLS, with a test CA and a server certificate for localhost / 127.0.0.1
# made by openssl on first use (kept, idempotent); the CA's path is exported as
# DOORSTEP_TEST_POSTGRES_CA for the sslmode=verify-full tests.
# Usage: eval "$(scripts/postgres.sh)"     (port: DOORSTEP_PG_PORT, default 54329)
# When it started the server, it also exports DOORSTEP_TEST_POSTGRES_STOP, the command that
# stops it.
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
started=0
if ! run "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  started=1
  rm -rf "$dir"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  run "$bindir/initdb" -D "$dir" -A trust -U postgres >/dev/null
  run "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >&2
fi
psql() { "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "$1"; }
psql "SELECT 1 FROM pg_database WHERE datname='doorstep_test'" | grep -q 1 \
  || "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres doorstep_test

# TLS: a test CA and a server certificate signed by it (made once, kept beside the data).
tls="${DOORSTEP_PG_TLS_DIR:-/tmp/doorstep-pg-$port-tls}"
reload=0
if [ ! -s "$tls/ca.crt" ] || [ ! -s "$tls/server.crt" ] || [ ! -s "$tls/server.key" ]; then
  command -v openssl >/dev/null 2>&1 || {
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >&2
  }
  work=$(mktemp -d)
  (
    cd "$work"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=Doorstep test CA" -keyout ca.key -out ca.crt \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=localhost" -keyout server.key -out server.csr
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt
  ) >/dev/null 2>&1
  mkdir -p "$tls"
  cp "$work/ca.crt" "$work/server.crt" "$work/server.key" "$tls/"
  rm -rf "$work"
  chmod 755 "$tls"; chmod 644 "$tls/ca.crt" "$tls/server.crt"; chmod 600 "$tls/server.key"
  [ "$(id -u)" -eq 0 ] && chown postgres "$tls/server.key" "$tls/server.crt"
  reload=1   # new files: make the server load them
fi
if [ "$reload" = 1 ] || [ "$(psql "SHOW ssl")" != "on" ] \
  || [ "$(psql "SHOW ssl_cert_file")" != "$tls/server.crt" ]; then
  psql "ALTER SYSTEM SET ssl_cert_file = '$tls/server.crt'" >/dev/null
  psql "ALTER SYSTEM SET ssl_key_file = '$tls/server.key'" >/dev/null
  psql "ALTER SYSTEM SET ssl = on" >/dev/null
  psql "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  for _ in $(seq 1 50); do
    [ "$(psql "SHOW ssl")" = "on" ] && break
    sleep 0.1
  done
  [ "$(psql "SHOW ssl")" = "on" ] || { echo "PostgreSQL did not turn TLS on (see $dir/server.log)" >&2; exit 1; }
fi
echo "export DOORSTEP_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port/doorstep_test"
echo "export DOORSTEP_TEST_POSTGRES_CA=$tls/ca.crt"
# Started here: say how to stop it (scripts/test.sh does, when it is done); one that was
# already running is left alone.
if [ "$started" = 1 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "export DOORSTEP_TEST_POSTGRES_STOP='runuser -u postgres -- $bindir/pg_ctl -D $dir -m fast stop'"
  else
    echo "export DOORSTEP_TEST_POSTGRES_STOP='$bindir/pg_ctl -D $dir -m fast stop'"
  fi
fi
