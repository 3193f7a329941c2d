#!/usr/bin/env bash
# Proof that the Windows till works: build the .exe and the installer, install silently under
# Wine into a fresh prefix, start the installed till under Xvfb, screenshot it and check that
# the main screen is drawn; a second start must raise the first window, not open another; an
# upgrade and an uninstall must keep the guest database; then run the pure parts' tests (workflow,
# parsers, SQLite ledger) as Windows binaries under Wine.
# Screenshots are kept in target/windows-artifacts/.
set -euo pipefail
source "$(dirname "$0")/windows-env.sh"
wineserver=/usr/lib/wine/wineserver
cd "$root"
bash installer/build-windows.sh

# One virtual display for every Wine process: Wine's desktop process keeps the display of the
# first program started in the prefix, so it is set before the first one.
display=:95
Xvfb "$display" -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill $xvfb_pid 2>/dev/null || true; $wineserver -k 2>/dev/null || true' EXIT
for _ in $(seq 50); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done
export DISPLAY=$display
# Mesa renders in software under Xvfb; Wine's OpenGL goes through it.
export LIBGL_ALWAYS_SOFTWARE=1
artifacts="$root/target/windows-artifacts"
rm -rf "$artifacts" && mkdir -p "$artifacts"
export WINEPREFIX="$root/target/windows/ci-prefix"
rm -rf "$WINEPREFIX"
wine_prefix
fail() { echo "test-windows: $*" >&2; exit 1; }
check() { echo "  ok: $*"; }

win_user=${USER:-$(id -un)}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
exe="$CARGO_TARGET_DIR/loyalty-till.exe"
setup="$CARGO_TARGET_DIR/loyalty-till-setup-$version.exe"

echo "== the shipped .exe"
objdump_out=$(x86_64-w64-mingw32-objdump -p "$exe")
grep -q 'Subsystem.*(Windows GUI)' <<<"$objdump_out" || fail "the .exe is not a GUI-subsystem program (a console would open)"
check "GUI subsystem: no console window"
grep -aq 'requireAdministrator' "$exe" || fail "no administrator manifest in the .exe"
grep -aq 'PerMonitorV2' "$exe" || fail "no DPI awareness in the manifest"
check "manifest: requireAdministrator, PerMonitorV2"
x86_64-w64-mingw32-objdump -h "$exe" | grep -q '\.rsrc' || fail "no resource section (icon, version)"
python3 - "$exe" "$version" <<'PY' || fail "version information missing"
import sys
data = open(sys.argv[1], 'rb').read()
for text in ("FileVersion", sys.argv[2], "loyalty-till"):
    if text.encode("utf-16-le") not in data:
        sys.exit(1)
PY
check "version information $version and icon resources"

program_files="$WINEPREFIX/drive_c/Program Files/loyalty-till"
appdata_local="$WINEPREFIX/drive_c/users/$win_user/AppData/Local/loyalty-till/loyalty-till"
appdata_roaming="$WINEPREFIX/drive_c/users/$win_user/AppData/Roaming/loyalty-till/loyalty-till"

echo "== silent install"
"$wine" "$setup" /S
$wineserver -w
[ -f "$program_files/loyalty-till.exe" ] || fail "not installed into Program Files"
[ -f "$program_files/uninstall.exe" ] || fail "no uninstaller"
[ ! -e "$program_files/bcryptprimitives.dll" ] || fail "the Wine stand-in DLL was shipped"
[ -f "$WINEPREFIX/drive_c/users/Public/Desktop/loyalty-till.lnk" ] || fail "no desktop shortcut"
[ -f "$WINEPREFIX/drive_c/ProgramData/Microsoft/Windows/Start Menu/Programs/loyalty-till/loyalty-till.lnk" ] ||
  fail "no Start-menu shortcut"
"$wine" reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\loyalty-till' | grep -q DisplayVersion ||
  fail "not registered in Programs and Features"
check "Program Files, shortcuts, uninstall entry"

echo "== the installed till under Xvfb"

visible_windows() { xdotool search --onlyvisible --name '^GetMeBack$' 2>/dev/null | wc -l; }
wait_window() {
  for _ in $(seq 600); do [ "$(visible_windows)" -ge 1 ] && return 0; sleep 0.1; done
  fail "the till's window did not appear"
}
# The installed till on a demo database in DATA, and Notepad beside it with the focus; sets $notepad.
start_till_and_notepad() { # data-dir
  "$wine" "C:\\Program Files\\loyalty-till\\loyalty-till.exe" --demo --data-dir "Z:${1//\//\\}" >/dev/null 2>&1 &
  wait_window
  "$wine" notepad >/dev/null 2>&1 &
  notepad=""
  for _ in $(seq 300); do
    notepad=$(xdotool search --onlyvisible --name 'Notepad' 2>/dev/null | head -1) && [ -n "$notepad" ] && break
    sleep 0.1
  done
  [ -n "$notepad" ] || fail "Notepad did not start"
  xdotool windowactivate --sync "$notepad" 2>/dev/null || xdotool windowfocus --sync "$notepad"
  sleep 1
}
# Waits up to 10 s for a device read whose log line matches PATTERN, and an identify call, in DATA's logs.
identified_in() { # data-dir pattern
  for _ in $(seq 100); do
    # Without -q the second grep reads everything: no SIGPIPE for the first under pipefail.
    if grep -rh 'device read' "$1/logs/" 2>/dev/null | grep "$2" >/dev/null &&
      grep -rh 'backend call succeeded' "$1/logs/" 2>/dev/null | grep identify >/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}
accent_pixels() { # pixels of the brand colour (the big button, the header)
  convert "$1" -fuzz 6% -fill black +opaque '#0b7a5c' -fill white -opaque '#0b7a5c' -format '%[fx:round(mean*w*h)]' info:
}
check_drawn() { # png label min-brand-pixels
  local colours accent
  colours=$(convert "$1" -format '%k' info:)
  accent=$(accent_pixels "$1")
  echo "  $1: $colours colours, $accent brand-colour pixels"
  [ "$colours" -ge 50 ] || fail "$2 looks blank ($colours colours)"
  [ "$accent" -ge "$3" ] || fail "$2: too little of the brand colour ($accent pixels, expected $3 or more)"
}

"$wine" "C:\\Program Files\\loyalty-till\\loyalty-till.exe" >"$artifacts/till-stdout.log" 2>&1 &
till_pid=$!
wait_window
sleep 4
import -window root "$artifacts/installed-idle.png"
# The big brand button alone is about 400x120 px.
check_drawn "$artifacts/installed-idle.png" "the main screen" 30000

echo "== a second start raises the first window"
start=$(date +%s)
timeout 60 "$wine" "C:\\Program Files\\loyalty-till\\loyalty-till.exe" >/dev/null 2>&1 || fail "the second start failed or hung"
echo "  second start returned after $(( $(date +%s) - start )) s"
sleep 1
[ "$(visible_windows)" -eq 1 ] || fail "$(visible_windows) till windows after a second start"
grep -rq "already running" "$appdata_local/data/logs/" || fail "the second start did not log that the till runs"
kill -0 "$till_pid" 2>/dev/null || fail "the first till exited"
check "one window; the second start logged 'already running' and left"

echo "== nothing written next to the .exe; data in AppData"
[ "$(ls "$program_files" | sort | tr '\n' ' ')" = "loyalty-till.exe loyalty-till.ico uninstall.exe " ] ||
  fail "unexpected files in Program Files: $(ls "$program_files")"
[ -f "$appdata_local/data/loyalty.sqlite" ] || fail "no guest database in AppData\\Local"
check "guest database at AppData\\Local\\loyalty-till\\loyalty-till\\data"

# Close the till (as Windows would at shutdown), then the demo guest card for a second look.
$wineserver -k || true
wait "$till_pid" 2>/dev/null || true
"$wine" "C:\\Program Files\\loyalty-till\\loyalty-till.exe" --demo --scenario guest >/dev/null 2>&1 &
wait_window
sleep 4
import -window root "$artifacts/installed-guest.png"
# The bonus balance is written in the brand colour.
check_drawn "$artifacts/installed-guest.png" "the guest card" 500
$wineserver -k || true

echo "== a serial scanner on COM7 (a pseudo-terminal pair mapped into Wine)"
serial_data="$root/target/windows/serial-data"
rm -rf "$serial_data" && mkdir -p "$serial_data"
socat pty,raw,echo=0,link="$serial_data/com7" pty,raw,echo=0,link="$serial_data/scanner" >/dev/null 2>&1 &
socat_pid=$!
for _ in $(seq 50); do [ -e "$serial_data/scanner" ] && break; sleep 0.1; done
"$wine" reg add 'HKLM\Software\Wine\Ports' /v COM7 /t REG_SZ /d "$serial_data/com7" /f >/dev/null
$wineserver -k || true # Wine reads its port map at start
cat >"$serial_data/config.toml" <<'EOF'
[[serial_devices]]
port = "COM7"
baud = 9600
EOF
"$wine" "C:\\Program Files\\loyalty-till\\loyalty-till.exe" --demo --data-dir "Z:${serial_data//\//\\}" >/dev/null 2>&1 &
wait_window
for _ in $(seq 100); do grep -rq 'serial device connected' "$serial_data/logs/" 2>/dev/null && break; sleep 0.1; done
grep -rq 'serial device connected' "$serial_data/logs/" || fail "COM7 was not opened (see $serial_data/logs)"
printf 'GMB-00005678\r' >"$serial_data/scanner"
identified=""
for _ in $(seq 100); do
  if grep -rh 'device read' "$serial_data/logs/" 2>/dev/null | grep -q COM7 &&
    grep -rh 'backend call succeeded' "$serial_data/logs/" 2>/dev/null | grep -q identify; then
    identified=yes
    break
  fi
  sleep 0.1
done
sleep 2
import -window root "$artifacts/serial-scan.png"
[ -n "$identified" ] || fail "the read on COM7 did not identify the guest (see $serial_data/logs)"
check "COM7 opened by the Windows serial path; the card code read identified the guest"
$wineserver -k || true
kill "$socat_pid" 2>/dev/null || true

echo "== a keyboard-mode scanner read while Notepad has focus (Raw Input)"
kbd_data="$root/target/windows/kbd-data"
rm -rf "$kbd_data" && mkdir -p "$kbd_data"
cat >"$kbd_data/config.toml" <<'EOF'
[[keyboard_devices]]
# Wine shows one virtual keyboard; on a till this is part of the scanner's device path.
name_contains = "*"
label = "wedge-scanner"
EOF
start_till_and_notepad "$kbd_data"
xdotool type --delay 5 100001
xdotool key Return
identified=""
identified_in "$kbd_data" wedge-scanner && identified=yes
sleep 2
import -window root "$artifacts/wedge-scan-over-notepad.png"
[ -n "$identified" ] || fail "the scan typed into Notepad did not identify the guest (see $kbd_data/logs)"
check "typed into Notepad, read by the till in the background, guest identified"
$wineserver -k || true

echo "== a card swipe typed into Notepad is kept from it; a person's typing is not (keyboard hook)"
gate_data="$root/target/windows/gate-data"
rm -rf "$gate_data" && mkdir -p "$gate_data"
start_till_and_notepad "$gate_data"
# A magnetic card reader in keyboard mode: the demo guest's track 2, keys 5 ms apart.
xdotool type --delay 5 '%E?;7001000010?'
xdotool key Return
identified=""
identified_in "$gate_data" source=keyboard && identified=yes
sleep 1
import -window root "$artifacts/gate-swipe-over-notepad.png"
# The read brought the till forward; the cashier clicks back into Notepad and types by hand,
# keys 150 ms apart.
xdotool mousemove --window "$notepad" 200 200 click 1
sleep 0.5
xdotool type --delay 150 'hello'
sleep 0.5
xdotool key ctrl+a ctrl+c
sleep 0.5
notepad_text=$(xclip -selection clipboard -o 2>/dev/null | tr -d '\r')
echo "  Notepad holds: ${notepad_text@Q}"
[ -n "$identified" ] || fail "the swipe typed into Notepad did not identify the guest (see $gate_data/logs)"
[ "$notepad_text" = "hello" ] || fail "Notepad should hold only the hand-typed 'hello', it holds ${notepad_text@Q}"
check "the swipe went to the till only, the hand typing reached Notepad unchanged"
$wineserver -k || true

echo "== support log export on Windows"
export_dir="$root/target/windows/export"
rm -rf "$export_dir" && mkdir -p "$export_dir"
"$wine" "C:\\Program Files\\loyalty-till\\loyalty-till.exe" --data-dir "Z:${kbd_data//\//\\}" export-logs --no-upload \
  --out "Z:${export_dir//\//\\}" >"$artifacts/export-logs.txt" 2>&1 || fail "export-logs failed: $(cat "$artifacts/export-logs.txt")"
python3 - "$export_dir" <<'PY' || fail "the support zip is missing or incomplete"
import glob, sys, zipfile
zips = glob.glob(sys.argv[1] + "/*.zip")
names = zipfile.ZipFile(zips[0]).namelist()
print("  zip:", zips[0].rsplit("/", 1)[-1], names)
assert any(n.startswith("logs/") for n in names) and "system.txt" in names, names
PY
check "export-logs made a zip with the logs"

echo "== QR from the clipboard on Windows"
# Wine hands the X clipboard to the Windows program: a QR picture, then text, then a blank picture.
clip_exe="C:\\Program Files\\loyalty-till\\loyalty-till.exe"
qrencode -s 8 -o "$artifacts/clipboard-qr.png" 2000000000015
xclip -selection clipboard -t image/png -i "$artifacts/clipboard-qr.png"
clip_out=$("$wine" "$clip_exe" --demo --data-dir "Z:${kbd_data//\//\\}" decode-clipboard 2>&1) \
  || fail "decode-clipboard refused a QR picture: $clip_out"
case "$clip_out" in *'"source":"qr"'*'20*********15'*|*'20*********15'*'"source":"qr"'*) ;; *) fail "QR picture: $clip_out" ;; esac
printf '100001' | xclip -selection clipboard -i
clip_out=$("$wine" "$clip_exe" --demo --data-dir "Z:${kbd_data//\//\\}" decode-clipboard 2>&1) \
  || fail "decode-clipboard refused text: $clip_out"
case "$clip_out" in *'"source":"text"'*) ;; *) fail "clipboard text: $clip_out" ;; esac
convert -size 200x100 xc:white "$artifacts/clipboard-blank.png"
xclip -selection clipboard -t image/png -i "$artifacts/clipboard-blank.png"
if clip_out=$("$wine" "$clip_exe" --demo --data-dir "Z:${kbd_data//\//\\}" decode-clipboard 2>&1); then
  fail "a blank picture was taken for a QR: $clip_out"
fi
case "$clip_out" in *"no QR code found"*) ;; *) fail "blank picture: $clip_out" ;; esac
check "decode-clipboard read a QR picture and text from the Windows clipboard, refused a blank picture"

echo "== upgrade keeps data and config"
mkdir -p "$appdata_roaming/config"
before=$(sha256sum "$appdata_local/data/loyalty.sqlite" | cut -d' ' -f1)
"$wine" "$setup" /S
$wineserver -w
[ "$(sha256sum "$appdata_local/data/loyalty.sqlite" | cut -d' ' -f1)" = "$before" ] || fail "the upgrade changed the database"
[ -f "$program_files/loyalty-till.exe" ] || fail "the upgrade lost the program"
check "database unchanged by the upgrade"

echo "== uninstall keeps the guest database unless asked"
"$wine" "C:\\Program Files\\loyalty-till\\uninstall.exe" /S
$wineserver -w
[ ! -e "$program_files/loyalty-till.exe" ] || fail "the uninstaller left the program"
[ ! -e "$WINEPREFIX/drive_c/users/Public/Desktop/loyalty-till.lnk" ] || fail "the uninstaller left the shortcut"
[ -f "$appdata_local/data/loyalty.sqlite" ] || fail "the uninstaller deleted the guest database"
check "program removed, database kept"
"$wine" "$setup" /S /NOAUTOSTART
$wineserver -w
"$wine" "C:\\Program Files\\loyalty-till\\uninstall.exe" /S /REMOVEDATA
$wineserver -w
[ ! -e "$appdata_local" ] || fail "/REMOVEDATA kept the database"
check "/REMOVEDATA removes it"

echo "== the pure parts' tests as Windows binaries under Wine"
# The ledger suite's PostgreSQL half runs on Linux (scripts/test.sh); the till on Windows keeps
# the embedded SQLite ledger, whose half runs here.
"$win_cargo" test "${win_build_std[@]}" --release --locked \
  --lib --test workflow --test ledger --test scan_parsers --test wedge_classifier --test i18n \
  -- --skip postgres::

echo "test-windows: all passed; screenshots in $artifacts"
