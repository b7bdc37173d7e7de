#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SECONDS SEED_DIR... : a bounded, reproducible fuzzing
# run (fixed seed) over a scratch corpus; fails on any crash or sanitizer report.
set -euo pipefail
fuzzer=$1 seconds=$2
shift 2
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
"$fuzzer" -seed=1 -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 "$corpus" "$@"
