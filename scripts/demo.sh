#!/usr/bin/env bash
# The main job: a sync server on its embedded SQLite and three field devices that record a
# day of visits offline, reconnect and merge. Keeps serving until Ctrl-C.
# Extra arguments go to `doorstep-server demo` (e.g. --no-serve, --listen 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release -p doorstep-server -- demo "$@"
