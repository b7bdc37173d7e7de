#!/usr/bin/env bash
# bench/zero_vs_ddp.sh [BUILD_DIR=build]: zshard ZeRO-1 and ZeRO-2 on 2 CPU
# workers against torch DDP (gloo) + torch AdamW on 2 workers, same model
# (about 50M parameters, fp32) and data, all started by zlaunch in the same
# run. Prints step time and per-rank peak memory (RSS) of each beside the
# model-state formula plus the Python/torch baseline measured in the same
# process (see zero_vs_ddp.py), and a last line
# zero2_vs_ddp_step_time_ratio=<zshard/ddp> zero2_vs_ddp_memory_ratio=<zshard/ddp>
# zero2_training_peak_vs_formula=<peak / (formula + baseline)>.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
export PYTHONPATH=$PWD/$build/python${PYTHONPATH:+:$PYTHONPATH}
export BENCH_DDP_PORT=$((30000 + $$ % 20000))
run() { "$build/zlaunch" --nproc-per-node 2 bench/zero_vs_ddp.py "$1" 2>&1 | grep RESULT | sed 's/.*RESULT //'; }
max() { awk -v f="$2" '{ if ($(f) > m) m = $(f) } END { print m }' <<<"$1"; }  # over ranks
echo "ZeRO vs DDP on 2 CPU workers ($(hostname), $(nproc) cores), fp32, max over ranks, MiB"
printf "%-30s %9s %10s %10s %9s %9s %16s\n" what step_s whole_peak train_peak baseline formula "train/(f+base)"
declare -A time train
for mode in zshard1 zshard2 ddp; do
  out=$(run $mode)
  time[$mode]=$(max "$out" 2)
  train[$mode]=$(max "$out" 4)
  base=$(max "$out" 5)
  formula=$(max "$out" 6)
  ratio=$(echo "scale=3; ${train[$mode]} / ($formula + $base)" | bc)
  [ $mode = zshard2 ] && zero2_ratio=$ratio
  printf "%-30s %9s %10s %10s %9s %9s %16s\n" "$mode" "${time[$mode]}" "$(max "$out" 3)" "${train[$mode]}" \
    "$base" "$formula" "$ratio"
done
echo "zero2_vs_ddp_step_time_ratio=$(echo "scale=3; ${time[zshard2]} / ${time[ddp]}" | bc)" \
  "zero2_vs_ddp_memory_ratio=$(echo "scale=3; ${train[zshard2]} / ${train[ddp]}" | bc)" \
  "zero2_training_peak_vs_formula=$zero2_ratio"
