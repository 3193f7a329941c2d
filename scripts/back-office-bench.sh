#!/usr/bin/env bash
# The back office over HTTP on a large ledger: 1 000 000 guests and 10 000 000 operations
# generated on SQLite and on PostgreSQL; search by phone, card and name prefix, a guest's page
# with its history (p50/p95) and the 30-day report (median/max), against the goals. In release;
# everything generated goes to temporary places and is dropped (needs ~6 GB free in $TMPDIR and
# for PostgreSQL's data).
#   bash scripts/back-office-bench.sh
#   LOYALTY_BENCH_GUESTS=100000 LOYALTY_BENCH_OPS=1000000 bash scripts/back-office-bench.sh   # smaller
#   LOYALTY_TEST_PG_URL=postgres://… bash scripts/back-office-bench.sh   # on a PostgreSQL of your own
#   bash scripts/back-office-bench.sh back_office_sqlite                  # one store
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${LOYALTY_TEST_PG_URL:-}" ]; then
  export PG_TEST_DIR="${PG_TEST_DIR:-$PWD/target/pg-back-office-bench-$$}"
  eval "$(bash scripts/pg-test-server.sh --env)"
  trap 'bash scripts/pg-test-server.sh --stop; rm -rf "$PG_TEST_DIR"' EXIT
fi
cargo test --release --locked --test back_office_bench -- --ignored --nocapture --test-threads 1 "$@"
