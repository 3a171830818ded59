#!/usr/bin/env bash
# Builds DoorstepFFI.xcframework (device + simulator) and the Swift bindings. Runs on macOS
# with Xcode and:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
# Not run in CI here (no macOS on this machine); CI generates the Swift source itself.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-ffi/ios}"
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
  cargo build --release -p doorstep-ffi --features https --target "$t"
done
cargo build --release -p doorstep-ffi
mkdir -p "$out/headers" "$out/sim"
cargo run --release -p doorstep-ffi --features cli --bin uniffi-bindgen -- \
  generate --library target/release/libdoorstep_ffi.dylib --language swift --out-dir "$out/swift"
cp "$out/swift/doorstep_ffiFFI.h" "$out/headers/"
cp "$out/swift/doorstep_ffiFFI.modulemap" "$out/headers/module.modulemap"
lipo -create target/aarch64-apple-ios-sim/release/libdoorstep_ffi.a target/x86_64-apple-ios/release/libdoorstep_ffi.a \
  -output "$out/sim/libdoorstep_ffi.a"
rm -rf "$out/DoorstepFFI.xcframework"
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release/libdoorstep_ffi.a -headers "$out/headers" \
  -library "$out/sim/libdoorstep_ffi.a" -headers "$out/headers" \
  -output "$out/DoorstepFFI.xcframework"
echo "add $out/DoorstepFFI.xcframework and $out/swift/doorstep_ffi.swift to the Xcode project"
