#!/usr/bin/env bash
# Builds libdoorstep_ffi.so for Android (arm64-v8a, armeabi-v7a, x86_64) with cargo-ndk and
# generates the Kotlin bindings. Needs the Android NDK (ANDROID_NDK_HOME) and
#   rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
#   cargo install cargo-ndk
# Not run in CI here (no NDK on this machine); CI generates the Kotlin source itself.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-ffi/android}"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -o "$out/jniLibs" build --release -p doorstep-ffi --features https
cargo build --release -p doorstep-ffi
cargo run --release -p doorstep-ffi --features cli --bin uniffi-bindgen -- \
  generate --library target/release/libdoorstep_ffi.so --language kotlin --out-dir "$out/kotlin"
echo "copy $out/jniLibs into app/src/main/jniLibs and $out/kotlin into app/src/main/java"
