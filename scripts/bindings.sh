#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings of doorstep-ffi from the built library
# (UniFFI library mode) into ffi/bindings/<language>/. The generated code is not committed.
# Usage: scripts/bindings.sh [debug|release]   (default debug)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-debug}"
flag=""; [ "$profile" = release ] && flag="--release"
cargo build $flag -p doorstep-ffi
# Cargo's target directory: CARGO_TARGET_DIR when set (a worktree of its own), else target/.
target="${CARGO_TARGET_DIR:-target}"
lib="$target/$profile/libdoorstep_ffi.so"
[ -f "$lib" ] || lib="$target/$profile/libdoorstep_ffi.dylib"
out=ffi/bindings
rm -rf "$out"
for lang in kotlin swift python; do
  cargo run -q $flag -p doorstep-ffi --features cli --bin uniffi-bindgen -- \
    generate --library "$lib" --language "$lang" --out-dir "$out/$lang" --no-format
done
# The Python module loads the shared library from its own directory.
cp "$lib" "$out/python/"
echo "bindings in $out/{kotlin,swift,python}"
