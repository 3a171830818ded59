#!/usr/bin/env bash
# Installs the system packages Doorstep builds and tests against (Debian/Ubuntu): a C
# toolchain, pkg-config, OpenSSL's libcrypto headers (SQLCipher, bundled by rusqlite, links
# it), and Java 17 with Maven for the Kotlin suite (ffi/tests/kotlin; Maven fetches Kotlin,
# JNA and JUnit from Maven Central), and headless Chromium with its WebDriver and CJK fonts
# for the console's browser tests (sync-server/tests/console_browser.rs). Safe to run again:
# it installs only what is missing.
set -euo pipefail
need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
[ -f /usr/include/openssl/evp.h ] || need+=(libssl-dev)
command -v mvn >/dev/null 2>&1 || need+=(maven)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# Chinese text in the console's screenshots (fonts only: no test reads pixels).
[ -d /usr/share/fonts/opentype/noto ] || need+=(fonts-noto-cjk)
if ! command -v javac >/dev/null 2>&1 || ! javac -version 2>&1 | grep -qE 'javac (1[7-9]|[2-9][0-9])'; then
  need+=(openjdk-17-jdk-headless)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust from https://rustup.rs first" >&2
  exit 1
fi
