#!/usr/bin/env bash
# Cross-builds the Windows till (release .exe with icon, version, administrator manifest, no
# console) and its NSIS installer on Debian. Installs what it needs first.
# Output: target/windows/x86_64-pc-windows-gnu/release/loyalty-till.exe and
#         target/windows/loyalty-till-setup-<version>.exe
set -euo pipefail
source "$(dirname "$0")/windows-env.sh"
cd "$root"
win_deps

"$win_cargo" build "${win_build_std[@]}" --release --locked --bin loyalty-till
built="$CARGO_TARGET_DIR/$win_target/release/loyalty-till.exe"
# The shipped copy carries no symbols (37 MB with them, 16 without; nothing on the till reads them).
exe="$CARGO_TARGET_DIR/loyalty-till.exe"
x86_64-w64-mingw32-strip -o "$exe" "$built"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
setup="$CARGO_TARGET_DIR/loyalty-till-setup-$version.exe"
makensis -V2 -INPUTCHARSET UTF8 -DVERSION="$version" -DEXE="$exe" -DICON="$root/assets/icon.ico" \
  -DOUTFILE="$setup" installer/loyalty-till.nsi
ls -l "$exe" "$setup"
