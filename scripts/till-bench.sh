#!/usr/bin/env bash
# The till against a minimal eframe window (bench/minimal-window: the same eframe version and
# features, a heading and a button), both release builds, under Xvfb with Mesa's software GL,
# alternating the two ROUNDS times. Printed per run and as medians with the till/minimal ratio:
#
#   first frame   from just before the process is launched to its first frame laid out (each
#                 program prints the wall-clock time of that frame with --trace-startup), and of
#                 that the time to the window and its GL context; measured first on its own, the
#                 two alternated FIRST_ROUNDS times on the idle screen, since making the window and
#                 context (Mesa's software GL, the X server) varies by ±15 ms from run to run and
#                 a median of a few runs moves with it;
#   RSS           resident memory after SETTLE seconds idle (VmRSS);
#   idle CPU      user+system CPU over IDLE seconds with no input, as % of one core; for the till
#                 on each screen in SCREENS (reached with --scenario on the demo database).
#
# A measurement, not a test: nothing here fails on a slow machine. Keep the machine quiet.
# Usage: scripts/till-bench.sh   (FIRST_ROUNDS=15 ROUNDS=3 SETTLE=15 IDLE=10
#                                 SCREENS="idle add-guest guest payment done")
set -euo pipefail
cd "$(dirname "$0")/.."
first_rounds=${FIRST_ROUNDS:-15}
rounds=${ROUNDS:-3}
settle=${SETTLE:-15}
idle=${IDLE:-10}
screens=${SCREENS:-idle add-guest guest payment done}
size=${WINDOW_SIZE:-1024x768}
bash scripts/deps.sh
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --locked
CARGO_TARGET_DIR="$target" cargo build --release --locked --manifest-path bench/minimal-window/Cargo.toml
till="$target/release/loyalty-till"
minimal="$target/release/minimal-window"

display=:94
Xvfb "$display" -screen 0 1280x1024x24 -nolisten tcp -noreset >/dev/null 2>&1 &
xvfb_pid=$!
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  kill "$xvfb_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 50); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done

ticks=$(getconf CLK_TCK)
now_ms() { date +%s%3N; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# epoch_of LOG WHAT: the wall-clock time (ms) the program printed for a start-up step, if yet.
epoch_of() {
  grep -oE "$2 at epoch [0-9.]+" "$1" | grep -oE '[0-9.]+$' || true
}

# launch LABEL LOG CMD...: starts the program under the display and waits for its first frame.
# Sets pid, launched (ms) and frame (the epoch ms it printed); exits when no frame comes.
launch() {
  local label=$1 log=$2; shift 2
  launched=$(now_ms)
  DISPLAY=$display LIBGL_ALWAYS_SOFTWARE=1 "$@" 2>"$log" >/dev/null &
  pid=$!
  frame=""
  for _ in $(seq 400); do
    frame=$(epoch_of "$log" 'first frame laid out')
    [ -n "$frame" ] && break
    sleep 0.02
  done
  if [ -z "$frame" ]; then
    echo "till-bench: $label printed no first frame; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
}

stop() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}

# first_frame NAME CMD...: launches, waits for the first frame, stops. Appends
# "name first_ms window_ms" to $work/first.
first_frame() {
  local name=$1; shift
  local log="$work/first-$name.log"
  launch "$name" "$log" "$@"
  stop
  local window; window=$(epoch_of "$log" 'window and GL context created')
  if [ -z "$window" ]; then
    echo "till-bench: $name printed no window time; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  awk -v n="$name" -v f="$frame" -v w="$window" -v l="$launched" \
    'BEGIN {printf "%s %.1f %.1f\n", n, f - l, w - l}' >>"$work/first"
}

# run NAME SCREEN CMD...: launches, waits for the first frame, settles, measures, stops.
# Appends "name screen first_ms rss_mb cpu_pct" to $work/results.
run() {
  local name=$1 screen=$2; shift 2
  launch "$name ($screen)" "$work/$name-$screen.log" "$@"
  local first; first=$(awk -v f="$frame" -v l="$launched" 'BEGIN {printf "%.0f", f - l}')
  sleep "$settle"
  local rss; rss=$(rss_mb "$pid")
  local before; before=$(cpu_ticks "$pid")
  sleep "$idle"
  local after; after=$(cpu_ticks "$pid")
  local cpu; cpu=$(awk -v a="$after" -v b="$before" -v t="$ticks" -v s="$idle" \
    'BEGIN {printf "%.2f", (a - b) / t / s * 100}')
  stop
  printf '%-8s %-10s first frame %5s ms  RSS %6s MB  idle CPU %5s %%\n' "$name" "$screen" "$first" "$rss" "$cpu"
  echo "$name $screen $first $rss $cpu" >>"$work/results"
}

echo "till-bench: first frame over $first_rounds alternations, window $size, $(nproc) cores"
for round in $(seq "$first_rounds"); do
  first_frame minimal "$minimal" --trace-startup --window-size "$size"
  first_frame till "$till" --demo --data-dir "$work/first-data-$round" --scenario idle --window-size "$size" \
    --layout full-screen --trace-startup
done
python3 - "$work/first" <<'PY'
import statistics
import sys

rows = [line.split() for line in open(sys.argv[1], encoding="utf-8")]
def column(name, index):
    return [float(r[index]) for r in rows if r[0] == name]

def quartiles(values):
    q = statistics.quantiles(values, n=4)
    return f"{q[1]:.0f} ms (quartiles {q[0]:.0f}-{q[2]:.0f})"

peer, till = column("minimal", 1), column("till", 1)
peer_window, till_window = column("minimal", 2), column("till", 2)
print(f"minimal window: first frame {quartiles(peer)}, of it window and GL context {quartiles(peer_window)}")
print(f"till (idle):    first frame {quartiles(till)}, of it window and GL context {quartiles(till_window)}")
laid_out = [f - w for f, w in zip(till, till_window)]
peer_laid_out = [f - w for f, w in zip(peer, peer_window)]
print(
    f"first frame: till/minimal {statistics.median(till) / statistics.median(peer):.2f}x; "
    f"from the window to the first frame {statistics.median(laid_out):.1f} ms against "
    f"{statistics.median(peer_laid_out):.1f} ms"
)
PY

echo "till-bench: $rounds rounds, RSS after ${settle} s, idle CPU over ${idle} s, window $size, $(nproc) cores"
for round in $(seq "$rounds"); do
  echo "-- round $round"
  run minimal window "$minimal" --trace-startup --window-size "$size"
  for screen in $screens; do
    data="$work/data-$round-$screen"
    run till "$screen" "$till" --demo --data-dir "$data" --scenario "$screen" --window-size "$size" \
      --layout full-screen --trace-startup
  done
done

echo "-- medians"
python3 - "$work/results" <<'PY'
import statistics
import sys

rows = [line.split() for line in open(sys.argv[1], encoding="utf-8")]
def median(name, screen, column):
    values = [float(r[column]) for r in rows if r[0] == name and (screen is None or r[1] == screen)]
    return statistics.median(values)

peer = {c: median("minimal", None, c) for c in (2, 3, 4)}
print(f"minimal window: first frame {peer[2]:.0f} ms, RSS {peer[3]:.1f} MB, idle CPU {peer[4]:.2f} %")
for screen in dict.fromkeys(r[1] for r in rows if r[0] == "till"):
    first, rss, cpu = (median("till", screen, c) for c in (2, 3, 4))
    # The worst run too: a window caught redrawing in a loop shows there, not in the median.
    worst = max(float(r[4]) for r in rows if r[0] == "till" and r[1] == screen)
    print(
        f"till {screen:10} first frame {first:5.0f} ms ({first / peer[2]:.2f}x)  "
        f"RSS {rss:6.1f} MB ({rss / peer[3]:.2f}x)  idle CPU {cpu:5.2f} % (worst {worst:.2f} %)"
    )
PY
