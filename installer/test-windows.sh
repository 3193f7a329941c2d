#!/usr/bin/env bash
# Proof that the Windows till works: build the .exe and the installer, install silently under
# Wine into a fresh prefix and check what each install leaves in the registry, the task folder
# and on the desktop (default, /NOAUTOSTART, /NODESKTOP, a task scheduler that accepts the logon
# task), that a simulated Windows start starts the till, start the installed till under Xvfb,
# screenshot it and check that the main screen is drawn; a second start must bring the first
# window forward (focus taken from Notepad), not open another; an upgrade from the previous
# release must keep its config byte for byte and its database row for row, and an uninstall the
# guest database; then run the pure parts' tests (workflow, parsers, SQLite ledger) as Windows
# binaries under Wine. One cross build serves every step.
# Screenshots are kept in target/windows-artifacts/.
set -euo pipefail
source "$(dirname "$0")/windows-env.sh"
wineserver=/usr/lib/wine/wineserver
cd "$root"
bash installer/build-windows.sh

# One virtual display for every Wine process: Wine's desktop process keeps the display of the
# first program started in the prefix, so it is set before the first one.
# A display number no other X server holds, away from the numbers other scripts use: another
# program's windows on it (a Linux till named GetMeBack, say, whose own Xvfb lost the race for
# the number) would be counted and focused by the checks below.
display=${WIN_TEST_DISPLAY:-}
if [ -z "$display" ]; then
  for n in $(seq 300 399); do
    [ -e "/tmp/.X$n-lock" ] || [ -e "/tmp/.X11-unix/X$n" ] || { display=":$n"; break; }
  done
fi
Xvfb "$display" -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill $xvfb_pid 2>/dev/null || true; $wineserver -k 2>/dev/null || true' EXIT
for _ in $(seq 50); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done
kill -0 "$xvfb_pid" 2>/dev/null || { echo "test-windows: Xvfb could not start on $display" >&2; exit 1; }
echo "test-windows: display $display"
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

run_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
app_key='HKLM\Software\loyalty-till'
uninstall_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\loyalty-till'
# What "Start with Windows" must run: the installed .exe, quoted for the space in its path.
installed_cmd='"C:\Program Files\loyalty-till\loyalty-till.exe"'
desktop_lnk="$WINEPREFIX/drive_c/users/Public/Desktop/loyalty-till.lnk"
start_menu_lnk="$WINEPREFIX/drive_c/ProgramData/Microsoft/Windows/Start Menu/Programs/loyalty-till/loyalty-till.lnk"
# A task in the scheduler's folder (system32\Tasks; Wine's is spelt "tasks", Windows ignores case).
task_present() { find "$WINEPREFIX/drive_c/windows/system32" -maxdepth 2 -ipath '*/tasks/loyalty-till*' | grep -q .; }

# The data of registry value NAME under KEY; nothing when the key or the value is missing.
reg_value() { # key name
  { win_run reg query "$1" /v "$2" 2>/dev/null || true; } | tr -d '\r' | sed -n "s/^    $2    REG_[A-Z_]*    //p"
}
# reg.exe answers 1 for a key that is not there; any other code (255: no answer) is no proof.
reg_key_absent() {
  local status=0
  win_run reg query "$1" >/dev/null 2>&1 || status=$?
  [ "$status" -eq 1 ]
}
install() { win_run "$setup" /S "$@"; $wineserver -w; }
uninstall() { win_run "C:\\Program Files\\loyalty-till\\uninstall.exe" /S "$@"; $wineserver -w; }
# What an install leaves: the program, the Start-menu shortcut, the desktop shortcut unless
# /NODESKTOP, and start with Windows unless /NOAUTOSTART. Wine's schtasks refuses a logon task
# (it takes only /XML), so here the installer must fall back to the Run key, and say so.
installed_as() { # label autostart(yes|no) desktop(yes|no)
  [ -f "$program_files/loyalty-till.exe" ] || fail "$1: not installed into Program Files"
  [ -f "$start_menu_lnk" ] || fail "$1: no Start-menu shortcut"
  if [ "$3" = yes ]; then
    [ -f "$desktop_lnk" ] || fail "$1: no desktop shortcut"
  else
    [ ! -e "$desktop_lnk" ] || fail "$1: a desktop shortcut despite /NODESKTOP"
  fi
  local mode run_value
  mode=$(reg_value "$app_key" Autostart)
  run_value=$(reg_value "$run_key" loyalty-till)
  ! task_present || fail "$1: a logon task file, though Wine's scheduler refuses logon tasks"
  if [ "$2" = yes ]; then
    [ "$mode" = run-key ] || fail "$1: Autostart is '${mode}', expected run-key (the scheduler refused the task)"
    [ "$run_value" = "$installed_cmd" ] || fail "$1: the Run key holds '${run_value}', expected $installed_cmd"
    check "$1: starts with Windows through the Run key ($run_value)"
  else
    [ -z "$mode" ] || fail "$1: Autostart is '${mode}' despite /NOAUTOSTART"
    [ -z "$run_value" ] || fail "$1: a Run key entry despite /NOAUTOSTART: $run_value"
    check "$1: no Run key entry, no logon task"
  fi
  check "$1: Start-menu shortcut; desktop shortcut: $3"
}
# What an uninstall must leave of the program: nothing in the registry, the task folder or on the desktop.
uninstalled() { # label
  [ ! -e "$program_files/loyalty-till.exe" ] || fail "$1: the uninstaller left the program"
  [ ! -e "$desktop_lnk" ] || fail "$1: the uninstaller left the desktop shortcut"
  [ ! -e "$start_menu_lnk" ] || fail "$1: the uninstaller left the Start-menu shortcut"
  [ -z "$(reg_value "$run_key" loyalty-till)" ] || fail "$1: the uninstaller left the Run key entry"
  ! task_present || fail "$1: the uninstaller left a logon task"
  reg_key_absent "$app_key" || fail "$1: the uninstaller left $app_key"
  reg_key_absent "$uninstall_key" || fail "$1: the uninstaller left the uninstall entry"
  check "$1: program, shortcuts, Run key entry and registry keys removed"
}

echo "== silent install"
install
[ -f "$program_files/loyalty-till.exe" ] || fail "not installed into Program Files"
[ -f "$program_files/uninstall.exe" ] || fail "no uninstaller"
[ ! -e "$program_files/bcryptprimitives.dll" ] || fail "the Wine stand-in DLL was shipped"
[ "$(reg_value "$uninstall_key" DisplayVersion)" = "$version" ] || fail "not registered in Programs and Features as $version"
check "Program Files, uninstall entry"
installed_as default yes yes

# The installed till under Xvfb.

visible_windows() { xdotool search --onlyvisible --name '^GetMeBack$' 2>/dev/null | wc -l; }
wait_window() {
  for _ in $(seq 600); do [ "$(visible_windows)" -ge 1 ] && return 0; sleep 0.1; done
  fail "the till's window did not appear"
}
# Notepad started and given the focus; sets $notepad.
start_notepad() {
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
# The installed till on a demo database in DATA, and Notepad beside it with the focus; sets $notepad.
start_till_and_notepad() { # data-dir
  "$wine" "C:\\Program Files\\loyalty-till\\loyalty-till.exe" --demo --data-dir "Z:${1//\//\\}" >/dev/null 2>&1 &
  wait_window
  start_notepad
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

echo "== start with Windows: a simulated Windows start runs the Run key"
# `wineboot` without -i is Wine's Windows start: it runs what HKLM\...\Run names, as Windows
# does at logon. The till must come up from it alone.
$wineserver -k || true
for _ in $(seq 50); do [ "$(visible_windows)" -eq 0 ] && break; sleep 0.1; done
[ "$(visible_windows)" -eq 0 ] || fail "a till window before the simulated Windows start"
win_run wineboot >/dev/null 2>&1
wait_window
check "the till started with the simulated Windows start"
$wineserver -k || true

echo "== the installed till, started by hand"
"$wine" "C:\\Program Files\\loyalty-till\\loyalty-till.exe" >"$artifacts/till-stdout.log" 2>&1 &
till_pid=$!
wait_window
sleep 4
import -window root "$artifacts/installed-idle.png"
# The big brand button alone is about 400x120 px.
check_drawn "$artifacts/installed-idle.png" "the main screen" 30000

echo "== a second start brings the first window forward"
# README: starting the till again brings the running window forward. Notepad (standing in for
# iikoFront) takes the focus first; after the second start the first till's window must be the
# foreground window. Windows' own answer is read (GetForegroundWindow, installer/wine/foreground.c,
# built for this prefix only): without a window manager Wine moves its foreground window but not
# the X input focus, so xdotool's focus would not tell.
foreground_exe="$CARGO_TARGET_DIR/wine-shim/foreground.exe"
x86_64-w64-mingw32-gcc -O2 -o "$foreground_exe" installer/wine/foreground.c
foreground() { win_run "$foreground_exe" | tr -d '\r'; } # "<pid> <title>" of the foreground window
till_pid_win=$(cat "$appdata_local/data/till.pid")
start_notepad
before=$(foreground)
echo "  before: foreground window: $before (the till runs as process $till_pid_win)"
[[ "$before" == *" Untitled - Notepad" ]] || fail "Notepad is not in the foreground, so the second start could prove nothing"
start=$(date +%s)
second_status=0
win_run_timeout=60 win_run "C:\\Program Files\\loyalty-till\\loyalty-till.exe" >"$artifacts/second-start.log" 2>&1 ||
  second_status=$?
[ "$second_status" -eq 0 ] ||
  fail "the second start failed or hung (exit code $second_status, 255: none within 60 s): $(cat "$artifacts/second-start.log")"
echo "  second start returned after $(( $(date +%s) - start )) s"
sleep 1
after=$(foreground)
echo "  after: foreground window: $after"
import -window root "$artifacts/second-start.png"
[ "$after" = "$till_pid_win GetMeBack" ] ||
  fail "after the second start the foreground window is '$after', not the running till's ($till_pid_win GetMeBack)"
[ "$(visible_windows)" -eq 1 ] || fail "$(visible_windows) till windows after a second start"
grep -rq "already running" "$appdata_local/data/logs/" || fail "the second start did not log that the till runs"
kill -0 "$till_pid" 2>/dev/null || fail "the first till exited"
grep -rh "already running" "$appdata_local/data/logs/" | grep -q "raised=true" ||
  fail "the second start did not report the window raised"
check "one window, in the foreground again; the second start logged 'already running' and left"

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
win_run reg add 'HKLM\Software\Wine\Ports' /v COM7 /t REG_SZ /d "$serial_data/com7" /f >/dev/null
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
# Here it takes under a second; 30 s leaves room on a loaded machine. A failure prints the
# till's log (one CI run failed without saying why; the likely cause, the ledger refused as
# "database is locked" when the back office made the same new file at once, is mended).
for _ in $(seq 300); do
  if grep -rh 'device read' "$serial_data/logs/" 2>/dev/null | grep -q COM7 &&
    grep -rh 'backend call succeeded' "$serial_data/logs/" 2>/dev/null | grep -q identify; then
    identified=yes
    break
  fi
  sleep 0.1
done
sleep 2
import -window root "$artifacts/serial-scan.png"
if [ -z "$identified" ]; then
  # What the till did, so that a failure says where it stopped (codes are masked in the log).
  grep -rhE 'startup|backend|serial|device read|WARN|ERROR' "$serial_data/logs/" 2>/dev/null | cut -c1-220 >&2 || true
  fail "the read on COM7 did not identify the guest (log lines above; all in $serial_data/logs)"
fi
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
win_run "C:\\Program Files\\loyalty-till\\loyalty-till.exe" --data-dir "Z:${kbd_data//\//\\}" export-logs --no-upload \
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
clip_out=$(win_run "$clip_exe" --demo --data-dir "Z:${kbd_data//\//\\}" decode-clipboard 2>&1) \
  || fail "decode-clipboard refused a QR picture: $clip_out"
case "$clip_out" in *'"source":"qr"'*'20*********15'*|*'20*********15'*'"source":"qr"'*) ;; *) fail "QR picture: $clip_out" ;; esac
printf '100001' | xclip -selection clipboard -i
clip_out=$(win_run "$clip_exe" --demo --data-dir "Z:${kbd_data//\//\\}" decode-clipboard 2>&1) \
  || fail "decode-clipboard refused text: $clip_out"
case "$clip_out" in *'"source":"text"'*) ;; *) fail "clipboard text: $clip_out" ;; esac
convert -size 200x100 xc:white "$artifacts/clipboard-blank.png"
xclip -selection clipboard -t image/png -i "$artifacts/clipboard-blank.png"
if clip_out=$(win_run "$clip_exe" --demo --data-dir "Z:${kbd_data//\//\\}" decode-clipboard 2>&1); then
  fail "a blank picture was taken for a QR: $clip_out"
fi
case "$clip_out" in *"no QR code found"*) ;; *) fail "blank picture: $clip_out" ;; esac
check "decode-clipboard read a QR picture and text from the Windows clipboard, refused a blank picture"

echo "== uninstall keeps the guest database unless asked"
uninstall
uninstalled "uninstall"
[ -f "$appdata_local/data/loyalty.sqlite" ] || fail "the uninstaller deleted the guest database"
check "database kept"

echo "== /NOAUTOSTART: no logon task, no Run key entry"
install /NOAUTOSTART
installed_as /NOAUTOSTART no yes
uninstall /REMOVEDATA
uninstalled "uninstall /REMOVEDATA"
[ ! -e "$appdata_local" ] || fail "/REMOVEDATA kept the database"
check "/REMOVEDATA removes the database"

echo "== /NODESKTOP: no desktop shortcut, still starts with Windows"
install /NODESKTOP
installed_as /NODESKTOP yes no
uninstall
uninstalled "uninstall after /NODESKTOP"

echo "== start with Windows where the task scheduler accepts the logon task"
# Wine's schtasks refuses logon tasks, so the installer's other branch runs here against a
# recording stand-in (installer/wine/schtasks-recorder.c, this prefix only, chosen over Wine's
# own for these two runs by WINEDLLOVERRIDES): the task must be asked for with the highest
# privileges on the installed .exe, no Run key entry may be written, and the uninstaller must
# delete the task.
recorder="$CARGO_TARGET_DIR/wine-shim/schtasks.exe"
x86_64-w64-mingw32-gcc -municode -mwindows -O2 -o "$recorder" installer/wine/schtasks-recorder.c
system32="$WINEPREFIX/drive_c/windows/system32"
cp "$system32/schtasks.exe" "$system32/schtasks.exe.wine"
cp "$recorder" "$system32/schtasks.exe"
calls="$WINEPREFIX/drive_c/schtasks-calls.txt"
rm -f "$calls"
WINEDLLOVERRIDES=schtasks.exe=n install
mode=$(reg_value "$app_key" Autostart)
[ "$mode" = task ] || fail "scheduler accepts: Autostart is '${mode}', expected task"
[ -z "$(reg_value "$run_key" loyalty-till)" ] || fail "scheduler accepts: a Run key entry besides the logon task"
expected_create='/Create /F /TN "loyalty-till" /SC ONLOGON /RL HIGHEST /TR "\"C:\Program Files\loyalty-till\loyalty-till.exe\""'
[ "$(sed -n 1p "$calls" 2>/dev/null)" = "$expected_create" ] ||
  fail "scheduler accepts: the installer asked schtasks for '$(cat "$calls" 2>/dev/null)', expected '$expected_create'"
[ -f "$desktop_lnk" ] || fail "scheduler accepts: no desktop shortcut"
check "scheduler accepts: schtasks $expected_create; Autostart=task, no Run key entry"
WINEDLLOVERRIDES=schtasks.exe=n uninstall
[ "$(sed -n 2p "$calls")" = '/Delete /F /TN "loyalty-till"' ] ||
  fail "scheduler accepts: the uninstaller did not delete the logon task (calls: $(cat "$calls"))"
uninstalled "uninstall of a logon task"
cp "$system32/schtasks.exe.wine" "$system32/schtasks.exe"
rm -f "$system32/schtasks.exe.wine" "$calls"

echo "== upgrade from the previous release keeps its config byte for byte and its database row for row"
# There is no earlier installer a fresh clone can reach, and building an earlier commit would be
# a second cross build (15 minutes on 2 cores). What an upgrade can lose is the data the previous
# release left behind, and what the new installer does over the old one. So the previous release
# here is:
#  - its installer: this .nsi built from the same .exe as version 0.0.9 (the installer's
#    upgrade path reads what that one registered), and
#  - its data: a config.toml and a guest database of schema version 3, what the till released
#    before version 4 wrote (src/ledger/schema.sql, schema_v2.sql, schema_v3.sql, which are never
#    edited once released), holding the rows of installer/fixtures/previous-release/.
# Then this version's installer runs over it, and the upgraded till opens the data.
previous_version=0.0.9
previous_setup="$CARGO_TARGET_DIR/loyalty-till-setup-$previous_version.exe"
# zlib: the old installer is only unpacked here, and lzma takes longer to pack.
makensis -V2 -INPUTCHARSET UTF8 -X"SetCompressor /FINAL zlib" -DVERSION="$previous_version" -DEXE="$exe" \
  -DICON="$root/assets/icon.ico" -DOUTFILE="$previous_setup" installer/loyalty-till.nsi
win_run "$previous_setup" /S
$wineserver -w
[ "$(reg_value "$app_key" Version)" = "$previous_version" ] || fail "the previous release did not install as $previous_version"
fixture="$root/installer/fixtures/previous-release"
previous_db="$root/target/windows/previous-release.sqlite"
rm -f "$previous_db" "$previous_db"-*
python3 - "$previous_db" "$root/src/ledger" "$fixture/guests-v3.sql" <<'PY'
import sqlite3, sys
db, schema_dir, rows = sys.argv[1:4]
conn = sqlite3.connect(db)
conn.execute("PRAGMA journal_mode = WAL")  # as the till's ledger opens its file
for step in ("schema.sql", "schema_v2.sql", "schema_v3.sql"):
    conn.executescript(open(f"{schema_dir}/{step}", encoding="utf-8").read())
conn.executescript(open(rows, encoding="utf-8").read())
conn.execute("PRAGMA user_version = 3")
conn.commit()
conn.close()
PY
mkdir -p "$appdata_roaming/config" "$appdata_local/data"
cp "$fixture/config.toml" "$appdata_roaming/config/config.toml"
cp "$previous_db" "$appdata_local/data/loyalty.sqlite"
config_sum=$(sha256sum <"$fixture/config.toml")
db_sum=$(sha256sum <"$previous_db")
install
[ "$(reg_value "$app_key" Version)" = "$version" ] || fail "the upgrade did not record version $version"
[ "$(reg_value "$uninstall_key" DisplayVersion)" = "$version" ] || fail "Programs and Features does not show $version after the upgrade"
installed_as upgrade yes yes
[ "$(sha256sum <"$appdata_roaming/config/config.toml")" = "$config_sum" ] || fail "the upgrade changed config.toml"
[ "$(sha256sum <"$appdata_local/data/loyalty.sqlite")" = "$db_sum" ] || fail "the upgrade changed the guest database"
check "$previous_version -> $version: config.toml and the database file untouched by the installer"
"$wine" "C:\\Program Files\\loyalty-till\\loyalty-till.exe" >/dev/null 2>&1 &
wait_window
sleep 3
import -window root "$artifacts/upgraded.png"
$wineserver -k || true
[ "$(sha256sum <"$appdata_roaming/config/config.toml")" = "$config_sum" ] || fail "the upgraded till rewrote config.toml"
! grep -rq "config unreadable" "$appdata_local/data/logs/" || fail "the upgraded till could not read the previous config"
# Every row of every table the previous release had, in the columns it had, must be there after
# the upgraded till brought the file to this build's schema (one version per schema file).
latest=$(ls "$root"/src/ledger/schema*.sql | wc -l)
python3 - "$previous_db" "$appdata_local/data/loyalty.sqlite" "$latest" <<'PY' || fail "the upgraded till lost or changed rows of the previous database"
import sqlite3, sys
before = sqlite3.connect(sys.argv[1])
after = sqlite3.connect(sys.argv[2])
latest = int(sys.argv[3])
version = after.execute("PRAGMA user_version").fetchone()[0]
if version != latest:
    sys.exit(f"  the database is at schema version {version}, expected {latest}: the till did not upgrade it")
total = 0
for (table,) in before.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall():
    columns = ", ".join(f'"{row[1]}"' for row in before.execute(f'PRAGMA table_info("{table}")'))
    query = f'SELECT {columns} FROM "{table}" ORDER BY {columns}'
    old, new = before.execute(query).fetchall(), after.execute(query).fetchall()
    if old != new:
        sys.exit(f"  {table}: before {old}\n  after {new}")
    print(f"  {table}: {len(old)} rows kept")
    total += len(old)
if total < 10:
    sys.exit(f"  only {total} rows in the previous database: the check would prove little")
print(f"  schema version 3 -> {version}, {total} rows kept")
PY
check "the upgraded till read the previous config (unchanged) and kept every row of the previous database"
uninstall /REMOVEDATA
[ ! -e "$appdata_local" ] && [ ! -e "$appdata_roaming" ] || fail "/REMOVEDATA kept the database or the config"
check "/REMOVEDATA removes the database and the config"

echo "== the pure parts' tests as Windows binaries under Wine"
# The ledger suite's PostgreSQL half runs on Linux (scripts/test.sh); the till on Windows keeps
# the embedded SQLite ledger, whose half runs here.
"$win_cargo" test "${win_build_std[@]}" --release --locked \
  --lib --test workflow --test ledger --test scan_parsers --test wedge_classifier --test i18n \
  -- --skip postgres::

echo "test-windows: all passed; screenshots in $artifacts"
