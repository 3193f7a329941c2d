#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the till needs to run and to be tested.
# Safe to run again: apt-get skips what is installed. Needs root (or sudo).
set -euo pipefail

packages=(
  # The window: X11 client libraries and OpenGL (Mesa's software renderer works without a GPU).
  libxkbcommon-x11-0 libx11-6 libxcursor1 libxrandr2 libxi6 libgl1 libegl1 libgl1-mesa-dri
  # Fonts for the window title and any text egui does not embed.
  fonts-dejavu-core
  # Screenshots under a virtual display: Xvfb, ImageMagick's import, xdotool.
  xvfb imagemagick xdotool x11-utils
  # «QR из буфера» tests: a picture or text put on the X clipboard.
  xclip
  # Building: a C compiler for the bundled SQLite, pkg-config.
  build-essential pkg-config
  # Serial tests: linked pseudo-terminal pairs that can be unplugged and plugged back.
  socat
  # The QR test corpus: QR images from qrencode, distorted with Python's PIL and numpy.
  qrencode python3 python3-pil python3-numpy
  # The loyalty server's PostgreSQL tests and benchmark: a throwaway server (scripts/pg-test-server.sh)
  # and pgbench (in postgresql-contrib's dependencies on Debian 12).
  postgresql postgresql-contrib
  # The back office's browser test (scripts/web-test.sh): Debian's chromium, driven by npm's
  # playwright-core (no browser download; the script installs Node.js when it is missing).
  chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "Rust is not installed: install Rust 1.95 or newer with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi
