#!/usr/bin/env bash
# bench/zero_vs_ddp.sh [BUILD_DIR=build]: zshard ZeRO-1, 2 and 3 on 2 CPU
# workers against torch DDP (gloo) + torch AdamW on 2 workers, same model
# (about 50M parameters, fp32) and data, all started by zlaunch in the same
# run. Prints step time and per-rank peak memory (RSS) of each beside the
# model-state formula plus the Python/torch baseline measured in the same
# process (see zero_vs_ddp.py), and a last line
# zero2_vs_ddp_step_time_ratio=<zshard/ddp> zero2_vs_ddp_memory_ratio=<zshard/ddp>
# zero2_training_peak_vs_formula=<peak / (formula + baseline)> (the worst rank's)
# zero3_vs_zero2_step_time_ratio=... zero3_vs_zero2_memory_ratio=...
# zero3_prefetch_on_vs_off_step_time_ratio=... (zshard3: prefetch one layer
# ahead; zshard3np: stage3_prefetch_bucket_size 0, every gather on demand)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
export PYTHONPATH=$PWD/$build/python${PYTHONPATH:+:$PYTHONPATH}
export BENCH_DDP_PORT=$((30000 + $$ % 20000))
# One line per rank: <rank> <mode> <step s> <whole peak> <train peak> <baseline> <formula>.
run() {
  "$build/zlaunch" --nproc-per-node 2 bench/zero_vs_ddp.py "$1" 2>&1 | grep RESULT |
    sed 's/^\[rank \([0-9]*\)\] RESULT /\1 /' | sort -n
}
max() { awk -v f="$2" '{ if ($(f) > m) m = $(f) } END { print m }' <<<"$1"; }  # over ranks
per_rank() { awk -v f="$2" '{ printf "%s%s", (NR > 1 ? "/" : ""), $(f) }' <<<"$1"; }
echo "ZeRO vs DDP on 2 CPU workers ($(hostname), $(nproc) cores), fp32, MiB; peaks per rank (rank 0/rank 1)"
printf "%-10s %9s %12s %12s %9s %9s %16s\n" what step_s whole_peak train_peak baseline formula "train/(f+base)"
declare -A time train
for mode in zshard1 zshard2 zshard3 zshard3np ddp; do
  out=$(run $mode)
  time[$mode]=$(max "$out" 3)
  train[$mode]=$(max "$out" 5)
  base=$(max "$out" 6)
  formula=$(max "$out" 7)
  ratio=$(echo "scale=3; ${train[$mode]} / ($formula + $base)" | bc)
  [ $mode = zshard2 ] && zero2_ratio=$ratio
  printf "%-10s %9s %12s %12s %9s %9s %16s\n" "$mode" "${time[$mode]}" "$(per_rank "$out" 4)" \
    "$(per_rank "$out" 5)" "$base" "$formula" "$ratio"
done
echo "zero2_vs_ddp_step_time_ratio=$(echo "scale=3; ${time[zshard2]} / ${time[ddp]}" | bc)" \
  "zero2_vs_ddp_memory_ratio=$(echo "scale=3; ${train[zshard2]} / ${train[ddp]}" | bc)" \
  "zero2_training_peak_vs_formula=$zero2_ratio" \
  "zero3_vs_zero2_step_time_ratio=$(echo "scale=3; ${time[zshard3]} / ${time[zshard2]}" | bc)" \
  "zero3_vs_zero2_memory_ratio=$(echo "scale=3; ${train[zshard3]} / ${train[zshard2]}" | bc)" \
  "zero3_prefetch_on_vs_off_step_time_ratio=$(echo "scale=3; ${time[zshard3]} / ${time[zshard3np]}" | bc)"
