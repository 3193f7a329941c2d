#!/usr/bin/env bash
# The project's test command: every unit, workflow, ledger, locale and UI test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo test --all-targets --locked "$@"
