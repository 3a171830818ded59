#!/usr/bin/env bash
# Builds DoorstepFFI.xcframework (device + simulator) and the Swift bindings. Not run in CI
# (no macOS there; Swift cannot be compiled on this project's machines): CI generates the
# Swift source and checks the dependency tree (scripts/check-mobile-deps.sh).
#
# Toolchain:
#   - macOS with Xcode 15 or newer and its command-line tools (clang, lipo, xcodebuild)
#   - Rust >= 1.90 and
#       rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
#   - perl and make (openssl-src builds OpenSSL for SQLCipher from source; Xcode has both)
#   - cmake >= 3.12: aws-lc-sys (rustls' crypto provider) falls back to CMake for a target
#     its own build does not cover
# UNVERIFIED: never run on this project's machines (no macOS, Xcode or Swift there); the
# list is read from the crates' build scripts. CI checks only the dependency tree
# (scripts/check-mobile-deps.sh).
# HTTPS: rustls is always compiled in for iOS (certificates checked by the system's trust
# store through rustls-platform-verifier and the Security framework; no set-up call, unlike
# Android); do not pass `--features https` (native-tls, for desktop hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo's target directory: CARGO_TARGET_DIR when set, else target/.
target="${CARGO_TARGET_DIR:-target}"
out="${1:-ffi/ios}"
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
  cargo build --release -p doorstep-ffi --target "$t"
done
cargo build --release -p doorstep-ffi
mkdir -p "$out/headers" "$out/sim"
cargo run --release -p doorstep-ffi --features cli --bin uniffi-bindgen -- \
  generate --library "$target"/release/libdoorstep_ffi.dylib --language swift --out-dir "$out/swift"
cp "$out/swift/doorstep_ffiFFI.h" "$out/headers/"
cp "$out/swift/doorstep_ffiFFI.modulemap" "$out/headers/module.modulemap"
lipo -create "$target"/aarch64-apple-ios-sim/release/libdoorstep_ffi.a "$target"/x86_64-apple-ios/release/libdoorstep_ffi.a \
  -output "$out/sim/libdoorstep_ffi.a"
rm -rf "$out/DoorstepFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$target"/aarch64-apple-ios/release/libdoorstep_ffi.a -headers "$out/headers" \
  -library "$out/sim/libdoorstep_ffi.a" -headers "$out/headers" \
  -output "$out/DoorstepFFI.xcframework"
echo "add $out/DoorstepFFI.xcframework and $out/swift/doorstep_ffi.swift to the Xcode project"
