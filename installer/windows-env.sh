# Shared settings of the Windows cross-build, sourced by installer/*.sh.
# Debian's own Rust (rustc-web, with the standard library's source) builds the Windows target,
# because rustup cannot fetch it here; it lives in /usr/bin, behind rustup's ~/.cargo/bin.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
win_target=x86_64-pc-windows-gnu
win_cargo=/usr/bin/cargo
# A target dir of its own: another compiler, so nothing could be shared with the host build.
# WIN_TARGET_DIR moves it (e.g. one build shared by several checkouts); Wine prefixes and test
# data stay under this checkout's target/windows either way.
export CARGO_TARGET_DIR="${WIN_TARGET_DIR:-$root/target/windows}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$root/installer/wine-run.sh"
export RUSTC=/usr/bin/rustc
export RUSTDOC=/usr/bin/rustdoc
# -Zbuild-std is unstable; Debian's compiler allows it with this switch.
export RUSTC_BOOTSTRAP=1
win_build_std=(-Zbuild-std=std,panic_abort --target "$win_target")
wine_shim="$CARGO_TARGET_DIR/wine-shim/bcryptprimitives.dll"
export WINEPREFIX="${WINEPREFIX:-$root/target/windows/wineprefix}"
export WINEDEBUG=-all
wine=/usr/lib/wine/wine64

win_deps() {
  local packages=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 nsis wine64
    xvfb imagemagick xdotool x11-utils fonts-dejavu-core xclip qrencode)
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The ProcessPrng stand-in for Wine (installer/wine/processprng.c) and win_run's exit-code tool;
# never shipped.
win_shim() {
  mkdir -p "$(dirname "$wine_shim")"
  [ "$win_exit_code_tool" -nt "$root/installer/wine/exit-code.c" ] ||
    x86_64-w64-mingw32-gcc -municode -O2 -o "$win_exit_code_tool" "$root/installer/wine/exit-code.c"
  [ "$wine_shim" -nt "$root/installer/wine/processprng.c" ] && return 0
  x86_64-w64-mingw32-gcc -shared -O2 -o "$wine_shim" "$root/installer/wine/processprng.c" \
    "$root/installer/wine/bcryptprimitives.def" -ladvapi32
}

# installer/wine/exit-code.c, for win_run.
win_exit_code_tool="$CARGO_TARGET_DIR/wine-shim/exit-code.exe"

# Runs a Windows program under Wine, with the arguments "$wine" would take; its status is the exit
# code Windows recorded for the program (255 for none, or one above 255), read through
# installer/wine/exit-code.c: the shell's own status of a Wine process can be a SIGKILL from Wine's
# server after the program had returned (see there). $win_run_timeout, when set, bounds the wait
# in seconds.
win_run() {
  local program=$1 file code
  shift
  # A Unix path (cargo's test binaries) as Windows sees it: Wine maps / to drive Z:.
  [[ "$program" == /* ]] && program="Z:$program"
  file=$(mktemp)
  WIN_EXIT_CODE_FILE="Z:$file" timeout "${win_run_timeout:-0}" "$wine" "$win_exit_code_tool" "$program" "$@" || true
  code=$(tr -dc 0-9 <"$file")
  rm -f "$file"
  [[ "$code" =~ ^[0-9]+$ ]] || return 255
  [ "$code" -le 255 ] || return 255
  return "$code"
}

# A Wine prefix with the stand-in in its system32 (Wine 8 has no bcryptprimitives.dll at all), so
# test binaries and the installed till run unchanged and nothing is added to Program Files.
wine_prefix() {
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    mkdir -p "$WINEPREFIX"
    # A prefix wineboot failed to make would fail every later step with a less clear message.
    local log="$WINEPREFIX/wineboot.log" status=0
    "$wine" wineboot -i >"$log" 2>&1 || status=$?
    /usr/lib/wine/wineserver -w
    if [ "$status" -ne 0 ] || [ ! -f "$WINEPREFIX/system.reg" ]; then
      echo "windows-env: wineboot could not make the Wine prefix $WINEPREFIX (exit status $status); its output:" >&2
      cat "$log" >&2
      return 1
    fi
  fi
  win_shim
  cp -u "$wine_shim" "$WINEPREFIX/drive_c/windows/system32/"
}
