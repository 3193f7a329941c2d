#!/usr/bin/env bash
# The loyalty server's benchmark: payments/s (hold + commit over HTTP, durable) at 8 and 32
# clients with p50/p99, identify/calculate requests/s, on SQLite and PostgreSQL, and pgbench
# TPC-B on the same PostgreSQL as the ratio's denominator. Release build.
#   bash scripts/server-bench.sh            # 10 s per measurement
#   LOYALTY_BENCH_SECS=30 bash scripts/server-bench.sh
#   LOYALTY_BENCH_STORES=postgres bash scripts/server-bench.sh   # one store (sqlite, postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export PG_TEST_DIR="$PWD/target/pg-bench-$$"
eval "$(bash scripts/pg-test-server.sh --env)"
trap 'bash scripts/pg-test-server.sh --stop; rm -rf "$PG_TEST_DIR"' EXIT
cargo test --release --locked --test server_bench -- --ignored --nocapture --test-threads 1
