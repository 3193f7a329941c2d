#!/usr/bin/env bash
# The guests' CSV import (100 000 generated rows: read, checked, imported) and the guests page's
# search on 1 000 000 guests (name prefix, phone, card, deep pages; p50/p95), on SQLite and
# PostgreSQL, in release. Everything generated goes to temporary places and is dropped.
#   bash scripts/import-bench.sh
#   LOYALTY_BENCH_ROWS=20000 LOYALTY_BENCH_GUESTS=100000 bash scripts/import-bench.sh   # smaller
#   LOYALTY_TEST_PG_URL=postgres://… bash scripts/import-bench.sh   # on a PostgreSQL of your own
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${LOYALTY_TEST_PG_URL:-}" ]; then
  export PG_TEST_DIR="${PG_TEST_DIR:-$PWD/target/pg-import-bench-$$}"
  eval "$(bash scripts/pg-test-server.sh --env)"
  trap 'bash scripts/pg-test-server.sh --stop; rm -rf "$PG_TEST_DIR"' EXIT
fi
cargo test --release --locked --test import_bench -- --ignored --nocapture --test-threads 1 "$@"
