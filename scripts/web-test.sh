#!/usr/bin/env bash
# The back office in a real browser: Debian's chromium, headless, driven by playwright-core (no
# browser download). Starts `loyalty-till serve` on a fresh SQLite file with an owner made by
# `owner create`, then signs in, creates a group and a guest, credits the guest, imports and
# exports guests as CSV, and takes a screenshot of every page into target/web-test/ (WEB_TEST_OUT
# to change).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${WEB_TEST_OUT:-$PWD/target/web-test}"
mkdir -p "$out"

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
if ! command -v chromium >/dev/null; then
  echo "web-test: installing chromium" >&2
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null
fi
# Node.js may come from elsewhere (with its own npm): Debian's only when there is none.
if ! command -v npm >/dev/null; then
  echo "web-test: installing Node.js" >&2
  $sudo apt-get update -qq && $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
# playwright-core only (the driver; the browser is Debian's), pinned, kept beside the script's
# output so repeated runs do not download it again.
node_dir="$out/node"
if [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-save --no-audit --no-fund --silent playwright-core@1.65.2 >&2
fi

cargo build --locked --quiet --bin loyalty-till
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/loyalty-till"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

db="sqlite://$work/server.sqlite"
printf 'web-test-password\n' | "$bin" owner create --db "$db" --login owner >/dev/null
printf 'web-test-password\n' | "$bin" owner create --db "$db" --login manager --role manager >/dev/null
"$bin" serve --listen 127.0.0.1:0 --db "$db" >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/^listening on //p' "$work/serve.out")"
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "web-test: the server did not start" >&2
  cat "$work/serve.err" >&2
  exit 1
fi

NODE_PATH="$node_dir/node_modules" BASE_URL="$url" SHOTS="$out" PASSWORD="web-test-password" \
  node scripts/web-test/back-office.mjs
NODE_PATH="$node_dir/node_modules" BASE_URL="$url" SHOTS="$out" PASSWORD="web-test-password" \
  node scripts/web-test/import.mjs
echo "web-test: passed; screenshots in $out"
