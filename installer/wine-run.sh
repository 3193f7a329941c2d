#!/usr/bin/env bash
# Cargo's runner for x86_64-pc-windows-gnu: runs a Windows test binary (or the till) under Wine.
set -euo pipefail
source "$(dirname "$0")/windows-env.sh"
wine_prefix
# A test binary's result is the exit code Windows recorded (win_run in windows-env.sh).
win_run "$@"
