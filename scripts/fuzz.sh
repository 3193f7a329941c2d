#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of every input parser: builds the targets in
# fuzz/ once, runs each for a bounded time from its committed seeds (fuzz/corpus/<target>, read
# only; new inputs go to a temporary directory), prints executions and coverage per target, and
# fails if any target found a crash, a panic or a hang.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]    (default 20)
#
# A crashing input is kept in fuzz/artifacts/<target>/; replay it with
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> fuzz/artifacts/<target>/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# libFuzzer's instrumentation flags are nightly-only; the machine has the stable toolchain alone,
# and RUSTC_BOOTSTRAP lets it accept them.
export RUSTC_BOOTSTRAP=1
# No AddressSanitizer: the parsers are safe Rust (unsafe_code is denied), so ASan would find
# nothing there, while it slows every execution and the build. Debug assertions stay on, so
# integer overflow panics. Several codegen units: one (cargo fuzz's default) makes the build of
# the till's dependencies take far longer on two cores, for little speed in the parsers.
build_flags=(--sanitizer none --debug-assertions --codegen-units 16)

# No target is no fuzzing at all: a run that checked nothing must not pass.
mapfile -t targets < <(cargo fuzz list)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: cargo fuzz list found no fuzz targets in fuzz/: nothing was fuzzed" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets: ${targets[*]}"

start=$(date +%s)
cargo fuzz build "${build_flags[@]}"
echo "fuzz: built in $(( $(date +%s) - start )) s"

bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

summary=()
failed=()
for target in "${targets[@]}"; do
  mkdir -p "$work/$target" "fuzz/artifacts/$target"
  log="$work/$target.log"
  # -timeout: a single input running for seconds is a hang in a parser, reported like a crash.
  if "$bin_dir/$target" "$work/$target" "fuzz/corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$target/" >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$target")
  fi
  # The last status line, e.g. "#301424 DONE cov: 1243 ft: 4052 corp: 310/9830b ... exec/s: 15071".
  final=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$final" | grep -oE '[0-9]+' || true)
  ft=$(grep -oE 'ft: [0-9]+' <<<"$final" | grep -oE '[0-9]+' || true)
  corp=$(grep -oE 'corp: [0-9]+' <<<"$final" | grep -oE '[0-9]+' || true)
  line=$(printf '%-15s %-6s execs %10s  cov %6s  ft %6s  corpus %5s' \
    "$target" "$status" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
  echo "fuzz: $line"
  summary+=("$line")
  if [ "$status" = FAILED ]; then
    echo "fuzz: $target failed; the end of its log:" >&2
    tail -n 40 "$log" >&2
  fi
done

echo "fuzz: ${seconds} s per target, $(( $(date +%s) - start )) s in all"
printf '  %s\n' "${summary[@]}"
if [ ${#summary[@]} -ne ${#targets[@]} ]; then
  echo "fuzz: ${#summary[@]} of ${#targets[@]} targets ran" >&2
  exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
