#!/usr/bin/env bash
# Runs the till on the embedded demo database (created with demo guests on first run).
# Extra arguments go to the till, e.g. --layout full-screen or --lang en.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
exec cargo run --release -- --demo "$@"
