#!/usr/bin/env bash
# Latency and idle CPU of the real window under Xvfb, measured and printed (a measurement, not a
# timed test: nothing here fails on a slow machine). Each figure is taken on a fresh demo database:
#
#   scan (Enter)   a keyboard-mode scan typed into the window by xdotool: from just before the last
#                  byte (the Enter suffix) is sent to the first frame laid out with the guest card
#                  answered (the identification sent and its answer on screen);
#   scan (pause)   the same for a scanner with no suffix: the read ends by a pause, so this figure
#                  includes the burst classifier's end gap by design;
#   tap            from just before an xdotool click to the first frame that took it;
#   idle CPU       of the till on the add-guest screen (code field focused), over IDLE_SECONDS.
#
# Times come from the till's own log (LOYALTY_TILL_LOG=info,frames=trace: one line per frame, at
# the end of its layout pass; painting follows, and each line carries the previous frame's whole
# cost as prev_cpu_ms) against the clock read just before xdotool sends the byte or the click.
#
# Usage: scripts/measure-latency.sh [SCANS]   (default 40 of each kind; LOYALTY_TILL_BIN picks a
# build, default the release build; WINDOW_SIZE and LAYOUT as for the till, default 1024x768 full
# screen; IDLE_SECONDS default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
scans=${1:-40}
size=${WINDOW_SIZE:-1024x768}
layout=${LAYOUT:-full-screen}
idle_seconds=${IDLE_SECONDS:-20}
bash scripts/deps.sh
bin=${LOYALTY_TILL_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked
  bin="${CARGO_TARGET_DIR:-target}/release/loyalty-till"
fi

display=:95
Xvfb "$display" -screen 0 1280x1024x24 -nolisten tcp -noreset >/dev/null 2>&1 &
xvfb_pid=$!
till_pid=""
work=$(mktemp -d)
cleanup() {
  [ -n "$till_pid" ] && kill "$till_pid" 2>/dev/null || true
  kill "$xvfb_pid" 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "measurements kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
for _ in $(seq 50); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done
export DISPLAY=$display

now() { date +%s.%N; }

# Starts the till on the add-guest screen in $1 and waits for its scenario line; focuses it.
start_till() {
  local data=$1
  LOYALTY_TILL_LOG=info,frames=trace LIBGL_ALWAYS_SOFTWARE=1 "$bin" --demo --data-dir "$data" \
    --scenario add-guest --layout "$layout" --window-size "$size" --lang ru >"$data/stdout.log" 2>&1 &
  till_pid=$!
  for _ in $(seq 150); do
    grep -q "scenario add-guest reached screen add-guest" "$data/stdout.log" 2>/dev/null && break
    kill -0 "$till_pid" 2>/dev/null || { cat "$data/stdout.log" >&2; exit 1; }
    sleep 0.1
  done
  local window; window=$(xdotool search --name GetMeBack | head -n 1)
  xdotool windowfocus --sync "$window" 2>/dev/null || xdotool windowfocus "$window"
  # The pointer rests inside the window, away from any button.
  xdotool mousemove 5 400
  sleep 1
}

stop_till() {
  kill "$till_pid" 2>/dev/null || true
  wait "$till_pid" 2>/dev/null || true
  till_pid=""
}

# --- Scans with an Enter suffix, then without one. Each scan is the same guest's card code: the
# first one from the add-guest screen, the rest on the guest card (identified again).
run_scans() { # data-dir marks-file suffix(enter|pause)
  local data=$1 marks=$2 suffix=$3
  start_till "$data"
  for _ in $(seq "$scans"); do
    # Scanner speed: 15 ms a key. The last byte is sent by its own xdotool call, the clock read
    # just before it (so the figure includes xdotool's start, a few ms, never less than the truth).
    if [ "$suffix" = enter ]; then
      xdotool type --delay 15 100001
      now >>"$marks"
      xdotool key Return
    else
      xdotool type --delay 15 10000
      now >>"$marks"
      xdotool type --delay 0 1
    fi
    sleep 0.5
  done
  stop_till
}

mkdir -p "$work/enter" "$work/pause" "$work/tap" "$work/idle"
run_scans "$work/enter" "$work/enter.marks" enter
run_scans "$work/pause" "$work/pause.marks" pause

# --- Taps on the add-guest screen, on the keypad's digit keys (in the window's lower half, where
# the keypad is at either size); what matters is the frame that takes the click.
start_till "$work/tap"
w=${size%x*}
h=${size#*x}
for i in $(seq "$scans"); do
  xdotool mousemove $((w * 3 / 4)) $((h / 2 + (i % 3) * 10))
  sleep 0.3
  now >>"$work/tap.marks"
  xdotool click 1
  sleep 0.3
done
stop_till

# --- Idle CPU on the add-guest screen: the till's user and system time from /proc over the window.
start_till "$work/idle"
sleep 3
ticks() { awk '{print $14 + $15}' "/proc/$till_pid/stat"; }
frame_lines() { cat "$work/idle"/logs/*.log | grep -c "frames: frame" || true; }
f0=$(frame_lines)
t0=$(ticks)
sleep "$idle_seconds"
t1=$(ticks)
idle_frames=$(( $(frame_lines) - f0 ))
stop_till
hz=$(getconf CLK_TCK)

python3 - "$work" "$hz" "$t0" "$t1" "$idle_seconds" "$idle_frames" "$size" "$layout" <<'PY'
import glob, re, sys
from datetime import datetime

work, hz, t0, t1, idle_s, idle_frames, size, layout = sys.argv[1:]
line = re.compile(r"^(\S+)\s+TRACE frames: frame screen=(\S+) busy=(\S+) input=(\d+)(?: prev_cpu_ms=(\S+))?")

def frames(run):
    out = []
    for path in sorted(glob.glob(f"{work}/{run}/logs/*.log")):
        for text in open(path, encoding="utf-8"):
            m = line.match(text)
            if m:
                at = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
                cpu = float(m.group(5)) if m.group(5) not in (None, "None") else None
                out.append((at, m.group(2), m.group(3) == "true", int(m.group(4)), cpu))
    return out

def marks(run):
    return [float(x) for x in open(f"{work}/{run}.marks")]

def scan_latencies(run):
    fs = frames(run)
    result = []
    ts = marks(run)
    for i, t in enumerate(ts):
        # Only this try's frames: a scan the classifier took for typing (its keys more than
        # max_gap_ms apart, as xdotool's are on a loaded machine) is "missed", never charged
        # with the next try's answer.
        end = ts[i + 1] if i + 1 < len(ts) else float("inf")
        after = [f for f in fs if t <= f[0] < end]
        # The read is classified, the identification asked (busy), then answered on the card.
        busy = next((i for i, f in enumerate(after) if f[2]), None)
        if busy is None:
            result.append(None)
            continue
        done = next((f for f in after[busy:] if not f[2] and f[1] == "guest"), None)
        result.append(None if done is None else (done[0] - t) * 1000)
    return result, fs

def tap_latencies():
    fs = frames("tap")
    result = []
    for t in marks("tap"):
        first = next((f for f in fs if f[0] >= t and f[3] > 0), None)
        result.append(None if first is None else (first[0] - t) * 1000)
    return result, fs

def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]

def report(name, values, fs):
    ok = [v for v in values if v is not None]
    missed = len(values) - len(ok)
    cpus = [f[4] for f in fs if f[4] is not None]
    if not ok:
        print(f"{name:14} no frame found for any of {len(values)} tries")
        return
    print(f"{name:14} n={len(ok):3}  p50={pct(ok, 50):6.1f} ms  p99={pct(ok, 99):6.1f} ms  "
          f"max={max(ok):6.1f} ms  missed={missed}  frame cost p50={pct(cpus, 50) if cpus else float('nan'):.1f} ms")
    slowest = sorted(range(len(values)), key=lambda i: -(values[i] or 0))[:3]
    print(f"{'':14} slowest: " + ", ".join(f"try {i + 1}: {values[i]:.1f} ms" for i in slowest if values[i] is not None))

def identify_ms(run):
    call = re.compile(r'call="identify".* ms=(\d+)')
    out = []
    for path in sorted(glob.glob(f"{work}/{run}/logs/*.log")):
        out += [int(m.group(1)) for m in map(call.search, open(path, encoding="utf-8")) if m]
    return out

def to_request(run):
    # From the last byte to the frame that sent the identification (the read classified).
    fs = frames(run)
    ts = marks(run)
    out = []
    for i, t in enumerate(ts):
        end = ts[i + 1] if i + 1 < len(ts) else float("inf")
        busy = next((f for f in fs if t <= f[0] < end and f[2]), None)
        if busy:
            out.append((busy[0] - t) * 1000)
    return out

print(f"till {size} {layout}, under Xvfb with Mesa's software renderer")
for run, name in (("enter", "scan (Enter)"), ("pause", "scan (pause)")):
    values, fs = scan_latencies(run)
    report(name, values, fs)
    sent, calls = to_request(run), identify_ms(run)
    if sent and calls:
        print(f"{'':14} of which: to the request p50={pct(sent, 50):.1f} p99={pct(sent, 99):.1f} ms; "
              f"the ledger's identify p50={pct(calls, 50)} p99={pct(calls, 99)} ms")
values, fs = tap_latencies()
report("tap", values, fs)
cpu = (int(t1) - int(t0)) / int(hz) / float(idle_s) * 100
print(f"{'idle CPU':14} {cpu:.2f} % of one core over {idle_s} s on the add-guest screen, "
      f"{idle_frames} frames drawn meanwhile")
PY
