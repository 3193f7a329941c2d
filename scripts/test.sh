#!/usr/bin/env bash
# The project's test command: every unit, workflow, ledger, locale and UI test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# The server's conformance suite runs on SQLite and on a real PostgreSQL: a throwaway server on
# 127.0.0.1 (stopped again at the end). LOYALTY_TEST_SKIP_PG=1 skips the PostgreSQL half instead,
# said loudly at the start and the end, and never in CI (CI set): the tests would pass unrun.
skip_pg_banner() {
  echo "####################################################################################" >&2
  echo "## LOYALTY_TEST_SKIP_PG=1: the PostgreSQL half of the server tests was NOT RUN.   ##" >&2
  echo "####################################################################################" >&2
}
if [ "${LOYALTY_TEST_SKIP_PG:-}" = "1" ]; then
  if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
    echo "test.sh: LOYALTY_TEST_SKIP_PG=1 is not honoured in CI (CI=$CI): the PostgreSQL half must run" >&2
    exit 2
  fi
  skip_pg_banner
  trap 'skip_pg_banner' EXIT
else
  # A server of this run's own, so that two runs at once never stop each other's.
  export PG_TEST_DIR="$PWD/target/pg-test-$$"
  eval "$(bash scripts/pg-test-server.sh --env)"
  trap 'bash scripts/pg-test-server.sh --stop; rm -rf "$PG_TEST_DIR"' EXIT
fi
cargo test --all-targets --locked "$@"
# The back office in a real browser (Debian's chromium, headless, through playwright-core).
bash scripts/web-test.sh
