#!/usr/bin/env bash
# Checks, without an NDK, the one piece of doorstep-ffi written for Android alone: the JNI
# export of ffi/src/android.rs (rustls' platform verifier needs the app's Context). It
# compiles that file for aarch64-linux-android in a scratch crate with the same lints
# (nothing there builds C, so no NDK clang is needed) and checks that the object exports
# the symbol the Kotlin half calls (ffi/android-support/.../DoorstepAndroid.kt). Needs the
# Rust standard library for the target: `rustup target add aarch64-linux-android` (done
# here when rustup is available). Linking and running on a device are not checked.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
target=aarch64-linux-android
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  echo "== rustup target add $target"
  rustup target add "$target"
fi
lock_version() { grep -A1 "^name = \"$1\"$" Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p' | head -1; }
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src"
cat >"$scratch/Cargo.toml" <<TOML
[package]
name = "android-jni-check"
version = "0.0.0"
edition = "2021"
publish = false

[target.'cfg(target_os = "android")'.dependencies]
jni = { version = "=$(lock_version jni)", default-features = false }
rustls-platform-verifier = "=$(lock_version rustls-platform-verifier)"

[lints.rust]
unsafe_code = "forbid"

[workspace]
TOML
cat >"$scratch/src/lib.rs" <<RUST
// The few items of doorstep-ffi that android.rs names.
#[allow(dead_code)]
mod error {
    #[derive(Debug)]
    pub enum NetworkErrorKind { Tls }
    #[derive(Debug)]
    pub enum DoorstepError { Network { kind: NetworkErrorKind, reason: String } }
    pub type Result<T, E = DoorstepError> = std::result::Result<T, E>;
}
#[allow(dead_code)]
#[path = "$root/ffi/src/android.rs"]
mod android;
RUST
CARGO_TARGET_DIR="$scratch/target" cargo build -q --target "$target" --manifest-path "$scratch/Cargo.toml"
kotlin=ffi/android-support/uniffi/doorstep_ffi/DoorstepAndroid.kt
package="$(sed -n 's/^package //p' "$kotlin")"
class="$(sed -n 's/^object \([A-Za-z]*\).*/\1/p' "$kotlin")"
method="$(sed -n 's/.*external fun \([A-Za-z]*\)(.*/\1/p' "$kotlin")"
# JNI name mangling: '_' -> '_1', '.' -> '_'.
symbol="Java_$(printf '%s.%s' "$package" "$class" | sed 's/_/_1/g; s/\./_/g')_${method}"
symbols="$(nm "$scratch/target/$target/debug/libandroid_jni_check.rlib" 2>/dev/null || true)"
if grep -q " T $symbol\$" <<<"$symbols"; then
  echo "ok: $target: ffi/src/android.rs compiles and exports $symbol"
else
  echo "FAIL: $target: $symbol is not exported by ffi/src/android.rs" >&2
  exit 1
fi
