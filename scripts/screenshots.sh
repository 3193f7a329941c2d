#!/usr/bin/env bash
# Screenshots of the real window under Xvfb, in Russian, each on a fresh demo database:
# the idle, guest, payment and success screens, at 1024x768 and as the 420 px side panel.
# Usage: scripts/screenshots.sh [OUT_DIR]   (default: target/screenshots)
# LANGS="ru en" adds other languages (files end in -en); SIDE_SIZES="420x700 420x1000" shoots the
# side panel at those sizes (files named by size) instead of 420x900 (side-panel).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/screenshots}
mkdir -p "$out"
bash scripts/deps.sh
# SERVER=1: the till on a loyalty server instead (each shot `serve` on a fresh copy of the demo
# ledger, the till `kassa-1` with a token of its own; the demo order typed as one line).
# LOYALTY_TILL_BIN: an already built till to take the pictures with (default: the release build).
bin=${LOYALTY_TILL_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked
  bin="${CARGO_TARGET_DIR:-target}/release/loyalty-till"
fi

display=:97
# -noreset: by default Xvfb resets when its last client leaves, and a till started while it does
# cannot connect ("Failed to open connection to X server"), which happened here between shots.
Xvfb "$display" -screen 0 1280x1024x24 -nolisten tcp -noreset >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill $xvfb_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done

# Every picture is checked here, in one place: the till logged that its scenario reached the
# screen the picture is named after, with no error shown, and the picture is not blank (50
# colours or more: a blank or black window has a handful).
failed=()
seed="" server_pid=""
if [ -n "${SERVER:-}" ]; then
  seed=$(mktemp -d)
  # The demo ledger, made by a till started once on it; each shot serves a fresh copy of it.
  DISPLAY=$display LIBGL_ALWAYS_SOFTWARE=1 "$bin" --demo --data-dir "$seed" --scenario idle >"$seed/stdout.log" 2>&1 &
  seed_pid=$!
  for _ in $(seq 150); do grep -q 'scenario idle reached' "$seed/stdout.log" 2>/dev/null && break; sleep 0.1; done
  kill "$seed_pid" 2>/dev/null || true
  wait "$seed_pid" 2>/dev/null || true
  [ -f "$seed/demo.sqlite" ] || { echo "screenshots: the demo ledger was not made" >&2; exit 1; }
  trap 'kill $xvfb_pid $server_pid 2>/dev/null || true' EXIT
fi
# SERVER=1: `serve` on a copy of the demo ledger in $1, a till token for it, and the till's
# config.toml pointing at it.
serve_for() {
  local data=$1 db="sqlite://$1/server.sqlite" url=""
  # With its write-ahead log: the till that made it was stopped, not closed.
  local file
  for file in "$seed"/demo.sqlite*; do cp "$file" "$data/server.sqlite${file#"$seed"/demo.sqlite}"; done
  "$bin" serve --listen 127.0.0.1:0 --db "$db" >"$data/serve.out" 2>"$data/serve.err" &
  server_pid=$!
  for _ in $(seq 100); do
    url="$(sed -n 's/^listening on //p' "$data/serve.out" 2>/dev/null || true)"
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "screenshots: the server did not start" >&2; cat "$data/serve.err" >&2; exit 1; }
  local token; token=$("$bin" till-token create --db "$db" --org default --till kassa-1)
  printf '[server]\nurl = "%s"\ntoken = "%s"\n' "$url" "$token" >"$data/config.toml"
}
shoot() { # scenario layout size file [lang] [screen error]: what the scenario ends on, if not itself with no error
  local data; data=$(mktemp -d)
  local ledger=(--demo)
  if [ -n "$seed" ]; then
    ledger=()
    serve_for "$data"
  fi
  DISPLAY=$display LIBGL_ALWAYS_SOFTWARE=1 "$bin" "${ledger[@]}" --data-dir "$data" --scenario "$1" \
    --layout "$2" --window-size "$3" --lang "${5:-ru}" >"$data/stdout.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do DISPLAY=$display xdotool search --name GetMeBack >/dev/null 2>&1 && break; sleep 0.1; done
  # The scenario's end: `scenario <name> reached screen <screen>, error <notice key or none>`.
  local expected="scenario $1 reached screen ${6:-$1}, error ${7:-none}" reached=""
  for _ in $(seq 150); do
    reached=$(grep -oE 'scenario [a-z0-9-]+ reached screen [a-z0-9-]+, error [a-z0-9-]+' "$data/stdout.log" | tail -n 1 || true)
    [ -n "$reached" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  # Then for the screen to be drawn.
  sleep 1.5
  local w h; w=${3%x*}; h=${3#*x}
  # A start that is slow to draw (seen once in CI: one frame of 12 black after 2.5 s, the same
  # shot fine in every rerun) gets more time.
  local colours=0 attempt
  for attempt in 1 2 3 4 5 6 7 8; do
    DISPLAY=$display import -window root -crop "${w}x${h}+0+0" "$out/$4"
    colours=$(convert "$out/$4" -format '%k' info:)
    [ "$colours" -ge 50 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  local problem=""
  if [ "$reached" != "$expected" ]; then
    problem="expected \"$expected\", the till logged \"${reached:-no scenario line}\""
  elif [ "$colours" -lt 50 ]; then
    problem="blank ($colours colours) after $attempt tries"
  fi
  if [ -n "$problem" ]; then
    echo "screenshots: $4: $problem; the till's output:" >&2
    cat "$data/stdout.log" >&2
    failed+=("$4")
  else
    [ "$attempt" -gt 1 ] && echo "screenshots: $4 drawn at try $attempt" >&2
    echo "$out/$4: $reached, $colours colours"
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  rm -rf "$data"
}

langs=${LANGS:-ru}
# SCENARIOS="return-find return-done" shoots only those.
scenarios=${SCENARIOS:-idle add-guest not-found enrol guest payment done return-find return-lines return-preview return-done shift shift-report split split-done split-accounts devices}
side_sizes=${SIDE_SIZES:-420x900}
# «Возврат чека» after the success screen: today's checks, lines picked, the preview and the result.
# «Закрыть смену» after the same visit: a hold a stopped till left open, and the shift report.
# «Устройства» last: the devices found and the test view, with a sample line checked.
for lang in $langs; do
  suffix=""
  [ "$lang" = ru ] || suffix="-$lang"
  for scenario in $scenarios; do
    # The not-found message is an error shown on the add-guest screen, by design.
    ends=()
    [ "$scenario" = not-found ] && ends=(add-guest err-unknown-code)
    # The lines picked on the check's «choose» step.
    [ "$scenario" = return-lines ] && ends=(return-choose none)
    [ "$scenario" = split-accounts ] && ends=(split none)
    shoot "$scenario" full-screen 1024x768 "$scenario-1024x768$suffix.png" "$lang" "${ends[@]}"
    for side in $side_sizes; do
      name="$scenario-$side$suffix.png"
      [ "$side" = 420x900 ] && name="$scenario-side-panel$suffix.png"
      shoot "$scenario" side-panel "$side" "$name" "$lang" "${ends[@]}"
    done
  done
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "screenshots: wrong screen, an error shown or blank: ${failed[*]}" >&2
  exit 1
fi
