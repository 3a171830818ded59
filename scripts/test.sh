#!/usr/bin/env bash
# Runs every test of Doorstep on a fresh machine: installs what the tests need, then the
# Rust suites (and the Python suites once the FFI crate has them).
# Usage: scripts/test.sh            (long modes: DOORSTEP_CRASH_CYCLES=10000 PROPTEST_CASES=1000)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# SQLCipher (bundled by rusqlite) links against the system's libcrypto.
[ -f /usr/include/openssl/evp.h ] || need_apt+=(libssl-dev)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi

echo "== cargo test (workspace)"
cargo test --workspace --all-targets
# Doc examples too (all-targets skips doctests).
cargo test --workspace --doc
