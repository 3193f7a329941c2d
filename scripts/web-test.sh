#!/usr/bin/env bash
# The back office in a real browser: Debian's chromium, headless, driven by playwright-core (no
# browser download). Starts `loyalty-till serve` on a fresh SQLite file with an owner made by
# `owner create`, then signs in, creates a group and a guest, credits the guest, imports and
# exports guests as CSV (scripts/web-test/import.mjs), and takes a screenshot of every page into
# target/web-test/ (WEB_TEST_OUT to change). A second server on an empty file goes through the
# first-run page, the reports, the password change and a contact edit.
# All of it on SQLite, and again on PostgreSQL (screenshots in pg/) when LOYALTY_TEST_PG_URL is
# set (WEB_TEST_BIN: a built binary to use instead of building).
# Then the till's settings page, on the real till under Xvfb (scripts/web-test/settings.mjs).
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

# WEB_TEST_BIN: an already built binary of this tree (skips the build).
if [ -n "${WEB_TEST_BIN:-}" ]; then
  bin="$WEB_TEST_BIN"
else
  cargo build --locked --quiet --bin loyalty-till
  bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/loyalty-till"
fi
work="$(mktemp -d)"
server_pid=""
pg_databases=()
stop_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}
cleanup() {
  stop_server
  for name in "${pg_databases[@]}"; do
    psql -q "$LOYALTY_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Starts `loyalty-till serve` on $1 (logs named $2) and sets server_pid and url.
start_server() {
  local db="$1" log="$2"
  LOYALTY_TOKEN_SECRET="$qr_key" "$bin" serve --listen 127.0.0.1:0 --db "$db" >"$work/$log.out" 2>"$work/$log.err" &
  server_pid=$!
  url=""
  # The server opens its output file as it starts: until then there is nothing to read.
  for _ in $(seq 1 100); do
    url="$(sed -n 's/^listening on //p' "$work/$log.out" 2>/dev/null || true)"
    [ -n "$url" ] && break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "web-test: the server on $db did not start" >&2
    cat "$work/$log.err" >&2
    exit 1
  fi
}

# A new empty PostgreSQL database on the server of LOYALTY_TEST_PG_URL (a URL ending in
# /DATABASE, as scripts/pg-test-server.sh prints), dropped at the end; prints its URL.
new_pg_database() {
  local name="web_test_$$_$1"
  PGOPTIONS="-c client_min_messages=warning" psql -q -v ON_ERROR_STOP=1 "$LOYALTY_TEST_PG_URL" \
    -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
  printf '%s/%s\n' "${LOYALTY_TEST_PG_URL%/*}" "$name"
}

# The programme's key: the server signs printable QR tokens with it, the till below checks them.
qr_key="web-test-programme-key"

# The back-office suites on one kind of store: $1 a new empty database, $2 a second one (the
# first-run page), $3 the folder of its screenshots, $4 its name in the logs.
back_office_suites() {
  local db="$1" first_run_db="$2" shots="$3" label="$4"
  mkdir -p "$shots"
  echo "web-test: the back office on $label" >&2
  printf 'web-test-password\n' | "$bin" owner create --db "$db" --login owner >/dev/null
  printf 'web-test-password\n' | "$bin" owner create --db "$db" --login manager --role manager >/dev/null
  start_server "$db" "serve-$label"
  NODE_PATH="$node_dir/node_modules" BASE_URL="$url" SHOTS="$shots" PASSWORD="web-test-password" \
    node scripts/web-test/back-office.mjs
  NODE_PATH="$node_dir/node_modules" BASE_URL="$url" SHOTS="$shots" PASSWORD="web-test-password" \
    node scripts/web-test/import.mjs
  # «Бонусы и подарки»: the printed QR codes read back by the till's decoder and parser.
  mkdir -p "$work/qr-till-$label"
  printf '[scan]\ntoken_secret = "%s"\n' "$qr_key" >"$work/qr-till-$label/config.toml"
  local till_token
  till_token="$("$bin" till-token create --db "$db" --org default --till web-qr)"
  NODE_PATH="$node_dir/node_modules" BASE_URL="$url" SHOTS="$shots" PASSWORD="web-test-password" \
    BIN="$bin" TILL_DIR="$work/qr-till-$label" TILL_TOKEN="$till_token" node scripts/web-test/rewards.mjs
  stop_server

  # A second server on a store with no account: the first-run page, then the reports.
  start_server "$first_run_db" "serve-first-run-$label"
  NODE_PATH="$node_dir/node_modules" BASE_URL="$url" SHOTS="$shots" PASSWORD="web-test-password" \
    node scripts/web-test/first-run-reports.mjs
  stop_server
}

back_office_suites "sqlite://$work/server.sqlite" "sqlite://$work/first-run.sqlite" "$out" sqlite
# The same on PostgreSQL when there is one (scripts/test.sh starts it; CI always has it), its
# screenshots in pg/.
if [ -n "${LOYALTY_TEST_PG_URL:-}" ]; then
  pg_db="$(new_pg_database main)"
  pg_databases+=("web_test_$$_main")
  pg_first="$(new_pg_database first_run)"
  pg_databases+=("web_test_$$_first_run")
  back_office_suites "$pg_db" "$pg_first" "$out/pg" postgres
else
  echo "web-test: LOYALTY_TEST_PG_URL is not set: the back office was NOT run on PostgreSQL" >&2
fi

# The till's settings page: the real till under Xvfb on a demo database, its endpoint on a free
# loopback port, config.toml written as an owner would (with comments).
if ! command -v Xvfb >/dev/null || ! command -v xdotool >/dev/null || ! command -v import >/dev/null; then
  echo "web-test: installing Xvfb" >&2
  $sudo apt-get update -qq && $sudo apt-get install -y -qq xvfb x11-utils xdotool imagemagick >/dev/null
fi
till_dir="$work/till"
mkdir -p "$till_dir"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$till_dir/config.toml" <<TOML
# The till of the web test.
program_name = "GetMeBack"   # the brand on the big button

[handhelds]
address = "127.0.0.1"        # loopback only
port = $port
path = "/GetMeBack"
settings_pin = "2468"
gift_item_codes = { "Капучино" = "00123" }
TOML
display=:95
Xvfb "$display" -screen 0 1280x1024x24 -nolisten tcp -noreset >/dev/null 2>&1 &
xvfb_pid=$!
# The display takes a moment to accept connections, longer on a busy machine.
for _ in $(seq 100); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done
DISPLAY=$display LIBGL_ALWAYS_SOFTWARE=1 "$bin" --demo --data-dir "$till_dir" --window-size 420x700 \
  >"$work/till.out" 2>&1 &
till_pid=$!
stop_till() {
  kill "$till_pid" 2>/dev/null || true; wait "$till_pid" 2>/dev/null || true
  kill "$xvfb_pid" 2>/dev/null || true; wait "$xvfb_pid" 2>/dev/null || true
}
trap 'stop_till; cleanup' EXIT
settings_url="http://127.0.0.1:$port/GetMeBack/settings"
for _ in $(seq 1 150); do
  python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$settings_url" 2>/dev/null && break
  sleep 0.1
done
window=""
for _ in $(seq 1 100); do
  window="$(DISPLAY=$display xdotool search --name GetMeBack 2>/dev/null | head -n 1 || true)"
  [ -n "$window" ] && break
  sleep 0.1
done
[ -n "$window" ] || { echo "web-test: the till's window did not open:" >&2; cat "$work/till.out" >&2; exit 1; }
brand="Кофейня «Ромашка»"
NODE_PATH="$node_dir/node_modules" SETTINGS_URL="$settings_url" SHOTS="$out" SETTINGS_PIN=2468 \
  TILL_PORT="$port" NEW_BRAND="$brand" node scripts/web-test/settings.mjs
# Read back from the file: the values, and the owner's comments kept.
grep -qx 'program_name = "Кофейня «Ромашка»"   # the brand on the big button' "$till_dir/config.toml" \
  || { echo "web-test: the brand or its comment is not in config.toml:" >&2; cat "$till_dir/config.toml" >&2; exit 1; }
for line in 'bonus_payment_type = "9b2f6a1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"' 'log_level = "debug"' \
  '# The till of the web test.' 'address = "127.0.0.1"        # loopback only'; do
  grep -qxF "$line" "$till_dir/config.toml" \
    || { echo "web-test: '$line' not in config.toml:" >&2; cat "$till_dir/config.toml" >&2; exit 1; }
done
grep -qF '"Десерт дня" = "00456"' "$till_dir/config.toml" \
  || { echo "web-test: the gift code is not in config.toml" >&2; exit 1; }
# The window took the new name without a restart (its UTF-8 title: xdotool's search reads the
# Latin-1 WM_NAME).
titled=""
for _ in $(seq 1 50); do
  titled="$(DISPLAY=$display xprop -id "$window" _NET_WM_NAME 2>/dev/null || true)"
  [[ "$titled" == *"$brand"* ]] && break
  sleep 0.1
done
[[ "$titled" == *"$brand"* ]] || { echo "web-test: the till's window did not take the new name: $titled" >&2; exit 1; }
DISPLAY=$display import -window root -crop 420x700+0+0 "$out/settings-06-till-window.png"
echo "web-test: passed; screenshots in $out"
