#!/usr/bin/env bash
# Compares our QR decoding (src/qr.rs: rxing, then rqrr), and each of those two decoders alone,
# with zbarimg and zxing-cpp on the full generated corpus (scripts/qr_corpus.py, 20 frames per
# category): decode rate per category, wrong reads, and per-frame time p50/p95.
# Usage: scripts/qr-bench.sh [OUT_DIR] (default target/qr-bench).
#
# Needs Debian packages: qrencode zbar-tools python3-zxing-cpp python3-pil python3-numpy.
#
# How each decoder is timed, so that the columns compare like with like as far as possible:
# - ours, rqrr and rxing: decode_passes on the frame already in memory (release build, from
#   tests/qr_corpus.rs);
# - zxing-cpp: read_barcodes on the frame already in memory, all in one Python process;
# - zbarimg: one process per file, so its figure includes process start-up and PNG/JPEG loading;
#   the start-up alone (zbarimg on a tiny blank image) is printed beneath the table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
for p in zbar-tools python3-zxing-cpp; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq --no-install-recommends "$p" || sudo apt-get install -y -qq --no-install-recommends "$p"; }
done

out=${1:-target/qr-bench}
corpus="$out/corpus"

# Debian's python3-pil and python3-zxing-cpp install for /usr/bin/python3, which a pyenv or venv
# python3 earlier on PATH does not see.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
missing=()
command -v qrencode >/dev/null || missing+=(qrencode)
command -v zbarimg >/dev/null || missing+=(zbar-tools)
"$python" -c 'import PIL, numpy' 2>/dev/null || missing+=(python3-pil python3-numpy)
"$python" -c 'import zxingcpp' 2>/dev/null || missing+=(python3-zxing-cpp)
if [ ${#missing[@]} -ne 0 ]; then
  echo "qr-bench: missing ${missing[*]}; install with: apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "== building release test harness" >&2
cargo test --release --locked --test qr_corpus --no-run >&2

echo "== generating corpus in $corpus" >&2
rm -rf "$corpus"
mkdir -p "$corpus"
"$python" scripts/qr_corpus.py "$corpus"

echo "== ours, rqrr and rxing (release)" >&2
QR_CORPUS_DIR="$corpus" QR_BENCH_OUT="$out/ours.tsv" \
  cargo test --release --locked --test qr_corpus corpus_decode_rates -- --nocapture >&2

echo "== zbarimg and zxing-cpp" >&2
"$python" - "$corpus" "$out/ours.tsv" <<'PY'
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import zxingcpp
from PIL import Image

corpus, ours_tsv = sys.argv[1], sys.argv[2]
with open(os.path.join(corpus, "manifest.tsv"), encoding="utf-8") as f:
    next(f)
    rows = [line.rstrip("\n").split("\t") for line in f]
expected = {r[0]: r[2] for r in rows}
category = {r[0]: r[1] for r in rows}
categories = list(dict.fromkeys(r[1] for r in rows))


def outcome(file, text):
    want = expected[file]
    if text is None:
        return "ok" if want == "" else "miss"
    return "ok" if text == want else "wrong"


results = {}  # decoder -> list of (file, outcome, ms)

with open(ours_tsv, encoding="utf-8") as f:
    for c in (line.rstrip("\n").split("\t") for line in f):
        results.setdefault(c[0], []).append((c[1], c[3], float(c[4])))

zbar = []
for file, _, _ in rows:
    start = time.perf_counter()
    proc = subprocess.run(
        ["zbarimg", "--raw", "-q", os.path.join(corpus, file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    ms = (time.perf_counter() - start) * 1e3
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    zbar.append((file, outcome(file, lines[0] if proc.returncode == 0 and lines else None), ms))
results["zbarimg"] = zbar

zx = []
for file, _, _ in rows:
    frame = np.asarray(Image.open(os.path.join(corpus, file)).convert("L"))
    start = time.perf_counter()
    found = zxingcpp.read_barcodes(frame)
    ms = (time.perf_counter() - start) * 1e3
    zx.append((file, outcome(file, found[0].text if found else None), ms))
results["zxing-cpp"] = zx

# zbarimg's fixed cost: process start-up and loading a trivial image.
with tempfile.TemporaryDirectory() as tmp:
    blank = os.path.join(tmp, "blank.png")
    Image.new("L", (16, 16), 255).save(blank)
    startup = []
    for _ in range(10):
        start = time.perf_counter()
        subprocess.run(["zbarimg", "--raw", "-q", blank], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        startup.append((time.perf_counter() - start) * 1e3)


def pct(values, q):
    values = sorted(values)
    return values[round((len(values) - 1) * q)]


short = {"perspective": "persp", "lowcontrast": "lowcon", "rotation": "rotat"}
header = ["decoder"] + [short.get(c, c) for c in categories] + ["overall", "wrong", "p50 ms", "p95 ms"]
table = []
for name, res in results.items():
    by_cat = {c: [0, 0] for c in categories}
    wrong = 0
    for file, out, _ in res:
        cell = by_cat[category[file]]
        cell[1] += 1
        cell[0] += out == "ok"
        wrong += out == "wrong"
    qr_ok = sum(v[0] for c, v in by_cat.items() if c != "clutter")
    qr_n = sum(v[1] for c, v in by_cat.items() if c != "clutter")
    ms = [m for _, _, m in res]
    table.append(
        [name]
        + [f"{v[0]}/{v[1]}" for v in by_cat.values()]
        + [f"{100.0 * qr_ok / max(qr_n, 1):.1f}%", str(wrong), f"{pct(ms, 0.5):.1f}", f"{pct(ms, 0.95):.1f}"]
    )

widths = [max(len(r[i]) for r in [header] + table) for i in range(len(header))]
fmt = lambda r: "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |"
print(fmt(header))
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for r in table:
    print(fmt(r))
print()
print(f"{len(rows)} frames, 640x480. clutter = frames correctly left unread (no QR in them).")
print("overall = decode rate over the QR frames (all categories but clutter); wrong = wrong text or a read on clutter.")
print("ours, rqrr, rxing and zxing-cpp: decode only, frame in memory. zbarimg: one process per file, load included;")
print(f"zbarimg start-up on a 16x16 blank PNG: median {statistics.median(startup):.1f} ms.")
PY
