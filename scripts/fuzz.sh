#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (suite 5, docs/fuzzing.md) for a given time each and
# prints a table: target, seconds, execs, exec/s, corpus size, crashes. Not run by CI (CI
# replays the corpora on stable: tests/tests/fuzz_corpus.rs).
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     # default: 60 s, every target
#
# Environment:
#   FUZZ_PARALLEL=N   run N targets at a time (default 1)
#   FUZZ_MERGE=1      afterwards, merge what the run found into the committed corpus
#                     fuzz/corpus/<target> (only inputs that add coverage)
#   FUZZ_ARGS="..."   more libFuzzer flags (e.g. "-fork=2 -ignore_crashes=1")
#
# A run works on a scratch corpus (fuzz/target/corpus/<target>, seeded from the committed
# one), so the committed corpus grows only by FUZZ_MERGE=1. Crashers land in
# fuzz/artifacts/<target>/ (libFuzzer stops a target at its first crash); logs in
# fuzz/target/logs/. Reproduce one: cargo +nightly fuzz run <target> <artifact file>.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
all=(sync_request sync_response enroll document device_response server_push)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
parallel="${FUZZ_PARALLEL:-1}"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "== installing the nightly toolchain (cargo-fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "== building ${targets[*]}"
for t in "${targets[@]}"; do
  cargo +nightly fuzz build "$t"
done

mkdir -p target/logs
run_one() {
  local t="$1"
  local work="target/corpus/$t"
  mkdir -p "$work" "artifacts/$t"
  # Artifacts before the run, to count what this run adds.
  ls "artifacts/$t" | sort >"target/logs/$t.before"
  # shellcheck disable=SC2086
  cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
    ${FUZZ_ARGS:-} >"target/logs/$t.log" 2>&1 || true
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    cargo +nightly fuzz run "$t" "corpus/$t" "$work" -- -merge=1 -rss_limit_mb=2048 \
      >"target/logs/$t.merge.log" 2>&1 || true
  fi
}

running=0
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${seconds}s (log: fuzz/target/logs/$t.log)"
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

printf '\n%-16s %8s %12s %8s %8s %8s  %s\n' target seconds execs exec/s corpus crashes "new artifacts"
for t in "${targets[@]}"; do
  log="target/logs/$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  if [ -z "$execs" ]; then
    # Stopped by a crash (no final stats): the last status line says how far it got.
    execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
  fi
  execs="${execs:-0}"
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1 || true)
  secs="${secs:-$seconds}"
  rate=$((execs / (secs > 0 ? secs : 1)))
  # libFuzzer's own count at the end: "corp: <inputs>/<size>".
  corpus=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  corpus="${corpus:-?}"
  new=$(comm -13 "target/logs/$t.before" <(ls "artifacts/$t" | sort) | tr '\n' ' ' || true)
  crashes=$(echo "$new" | wc -w)
  printf '%-16s %8s %12s %8s %8s %8s  %s\n' "$t" "$secs" "$execs" "$rate" "$corpus" "$crashes" "$new"
done
