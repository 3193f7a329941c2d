#!/usr/bin/env bash
# Push-to-screen latency of a POS order, measured and printed (a measurement, not a timed test:
# nothing here fails on a slow machine). The real till runs under Xvfb with a POS token; for each
# sample the POS side (Python, standard library) pushes a new order with its own number
# (`PUT {base}/pos/orders/{id}`), the clock read just before the request is sent, and the figure
# is the time to the first frame the till laid out with that order on screen (its log line
# `frames: frame … pos=<number>`, LOYALTY_TILL_LOG=info,frames=trace; painting follows the layout).
# So it includes the HTTP exchange, the order's storage in handhelds.sqlite, the UI's wake-up and
# one layout pass.
#
# Usage: scripts/measure-pos-push.sh [SAMPLES]   (default 100; LOYALTY_TILL_BIN picks a build,
# default the release build; WINDOW_SIZE and LAYOUT as for the till, default 1024x768 full screen)
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-100}
size=${WINDOW_SIZE:-1024x768}
layout=${LAYOUT:-full-screen}
bin=${LOYALTY_TILL_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked
  bin="${CARGO_TARGET_DIR:-target}/release/loyalty-till"
fi

display=:94
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

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=measure-pos-push
cat >"$work/config.toml" <<EOF
[handhelds]
port = $port
pos_token = "$token"
bonus_payment_type = "9b2f6a1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
EOF
DISPLAY=$display LOYALTY_TILL_LOG=info,frames=trace LIBGL_ALWAYS_SOFTWARE=1 "$bin" --demo \
  --data-dir "$work" --layout "$layout" --window-size "$size" --lang ru >"$work/stdout.log" 2>&1 &
till_pid=$!

python3 - "$work" "$port" "$token" "$samples" "$size" "$layout" <<'PY'
import glob, json, re, sys, time, urllib.request, uuid
from datetime import datetime

work, port, token, samples, size, layout = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
base = f"http://127.0.0.1:{port}/GetMeBack"

def request(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    r = urllib.request.Request(base + path, data=data, method=method)
    r.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        r.add_header("Content-Type", "application/json")
        r.add_header("Idempotency-Key", str(uuid.uuid4()))
    with urllib.request.urlopen(r, timeout=10) as answer:
        return answer.status

for _ in range(300):
    try:
        if request("GET", "/pos/health") == 200:
            break
    except Exception:
        pass
    time.sleep(0.1)
else:
    sys.exit("the till's endpoint never answered")
time.sleep(2)  # the first frames of the start settle

line = re.compile(r"^(\S+)\s+TRACE frames: frame .*\bpos=\"?([^\"\s]+)")
def frames():
    out = []
    for path in sorted(glob.glob(f"{work}/logs/*.log")):
        for text in open(path, encoding="utf-8"):
            m = line.match(text)
            if m:
                out.append((datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp(), m.group(2)))
    return out

marks = []
for i in range(samples):
    number = str(5000 + i)
    order = {"revision": 1, "number": number, "table": "5", "status": "open", "total": 35000,
             "lines": [{"lineId": "l1", "itemCode": "1001", "name": "Борщ", "quantity": 1000,
                        "price": 35000, "amount": 35000}]}
    order_id = str(uuid.uuid4())
    sent = time.time()
    assert request("PUT", f"/pos/orders/{order_id}", order) == 200
    marks.append((number, sent))
    time.sleep(0.3)
time.sleep(1)

seen = frames()
latencies, missed = [], 0
for number, sent in marks:
    shown = next((at for at, pos in seen if pos == number and at >= sent), None)
    if shown is None:
        missed += 1
    else:
        latencies.append((shown - sent) * 1000)
latencies.sort()
def pct(p):
    return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]
print(f"POS order push to the till's screen ({size}, {layout}): {len(latencies)} samples, {missed} never shown")
if latencies:
    print(f"  p50 {pct(50):.1f} ms   p99 {pct(99):.1f} ms   max {latencies[-1]:.1f} ms   (goal p99 <= 100 ms)")
PY
