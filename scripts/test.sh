#!/usr/bin/env bash
# Runs every test of Doorstep on a fresh machine: installs what the tests need, then the
# Rust suites (unit, property, crash, cross-crate stories with a real server on 127.0.0.1)
# and the Python and Kotlin (JVM) suites against the generated UniFFI bindings.
# Longer runs: DOORSTEP_CRASH_CYCLES=10000 PROPTEST_CASES=1000 DOORSTEP_FAULT_STEPS=500
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if ! python3 -m pytest --version >/dev/null 2>&1; then
  echo "== installing pytest"
  python3 -m pip install -q pytest
fi

echo "== PostgreSQL on 127.0.0.1 for the PostgreSQL backend's tests"
eval "$(scripts/postgres.sh)"
# Stop the PostgreSQL started here when the tests are done (one already running stays).
if [ -n "${DOORSTEP_TEST_POSTGRES_STOP:-}" ]; then
  trap 'echo "== stopping the test PostgreSQL"; $DOORSTEP_TEST_POSTGRES_STOP >/dev/null 2>&1 || true' EXIT
fi

echo "== cargo test (workspace)"
cargo test --workspace --all-targets
# Doc examples too (--all-targets skips doctests).
cargo test --workspace --doc

echo "== bindings (Kotlin, Swift, Python) and the Python suite"
scripts/bindings.sh debug
cargo build -p doorstep-server
python3 -m pytest -q ffi/tests/python

echo "== the Kotlin suite (JVM, JNA, a real server on 127.0.0.1)"
# Not -q: that would hide Surefire's closing "Tests run: N, Failures: 0 ..." summary.
mvn -B -ntp -f ffi/tests/kotlin/pom.xml test

echo "== Android and iOS dependency trees (no system OpenSSL, no native-tls)"
scripts/check-mobile-deps.sh
echo "== the Android-only JNI export (compiled for aarch64-linux-android, no NDK)"
scripts/check-android-jni.sh
