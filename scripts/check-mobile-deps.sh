#!/usr/bin/env bash
# Checks, without an NDK or Xcode (cargo tree only resolves), that doorstep-ffi for Android and
# iOS links no system OpenSSL: SQLCipher's OpenSSL is built from source (openssl-src, through
# openssl-sys's `vendored` feature) and HTTPS is rustls, never native-tls.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for target in aarch64-linux-android armv7-linux-androideabi x86_64-linux-android aarch64-apple-ios; do
  deps="$(cargo tree -q --target "$target" -p doorstep-ffi -e normal,build --prefix none)"
  features="$(cargo tree -q --target "$target" -p doorstep-ffi -e features -i openssl-sys --prefix none)"
  problems=()
  grep -q '^openssl-src ' <<<"$deps" || problems+=("openssl-src missing: SQLCipher would link the system's OpenSSL")
  grep -q '^openssl-sys feature "vendored"' <<<"$features" || problems+=("openssl-sys is not vendored")
  grep -q '^rustls ' <<<"$deps" || problems+=("rustls missing")
  if grep -qE '^(native-tls|hyper-tls|tokio-native-tls) ' <<<"$deps"; then problems+=("native-tls present"); fi
  if [ ${#problems[@]} -eq 0 ]; then
    echo "ok: $target links SQLCipher with a vendored OpenSSL and rustls"
  else
    printf 'FAIL: %s: %s\n' "$target" "${problems[@]}" >&2
    status=1
  fi
done
exit $status
