#!/usr/bin/env bash
# Builds libdoorstep_ffi.so for Android (arm64-v8a, armeabi-v7a, x86_64) with cargo-ndk and
# generates the Kotlin bindings. Not run in CI (no NDK there); CI checks the dependency tree
# (scripts/check-mobile-deps.sh) and compiles and runs the Kotlin bindings on the JVM.
#
# Toolchain (Linux or macOS host):
#   - Rust >= 1.90 (rust-toolchain of the workspace) and
#       rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
#   - cargo-ndk >= 3.5:   cargo install cargo-ndk
#   - the Android NDK, r26 or newer (its clang builds SQLCipher, OpenSSL, aws-lc and ring):
#       export ANDROID_NDK_HOME=/path/to/android-ndk-r26d
#   - perl and make: openssl-src builds OpenSSL for SQLCipher from source (no system OpenSSL
#     is linked; the NDK ships none)
#   - cmake >= 3.12: aws-lc-sys (rustls' crypto provider) builds with the NDK's clang and
#     falls back to CMake for a target its own build does not cover
# UNVERIFIED: this list is read from the crates' build scripts (openssl-src, aws-lc-sys,
# ring, libsqlite3-sys); this script has never been run on this project's machines (no NDK,
# no Android SDK there). What CI does check without an NDK: the dependency tree
# (scripts/check-mobile-deps.sh) and that ffi/src/android.rs, the Android-only JNI export,
# compiles for aarch64-linux-android and exports the symbol its Kotlin half calls
# (scripts/check-android-jni.sh).
# HTTPS: rustls is always compiled in for Android; do not pass `--features https` (that is
# native-tls, for desktop hosts). rustls checks certificates with the Android trust store
# through rustls-platform-verifier, which needs, in the app (docs/embedding.md, "Android"):
#   - ffi/android-support/uniffi/doorstep_ffi/DoorstepAndroid.kt (copied below into the
#     Kotlin output) and one call, DoorstepAndroid.initPlatformVerifier(context), before the
#     first https:// sync;
#   - the verifier's Kotlin component, Gradle `rustls:rustls-platform-verifier` in the version
#     of the rustls-platform-verifier-android crate in Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo's target directory: CARGO_TARGET_DIR when set, else target/.
target="${CARGO_TARGET_DIR:-target}"
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the Android NDK (r26 or newer)}"
command -v cargo-ndk >/dev/null || { echo "cargo install cargo-ndk" >&2; exit 1; }
out="${1:-ffi/android}"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -o "$out/jniLibs" build --release -p doorstep-ffi
cargo build --release -p doorstep-ffi
cargo run --release -p doorstep-ffi --features cli --bin uniffi-bindgen -- \
  generate --library "$target"/release/libdoorstep_ffi.so --language kotlin --out-dir "$out/kotlin"
cp -r ffi/android-support/. "$out/kotlin/"
echo "copy $out/jniLibs into app/src/main/jniLibs and $out/kotlin into app/src/main/java"
