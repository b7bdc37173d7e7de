#!/usr/bin/env bash
# bench/monitor_overhead.sh [BUILD_DIR=build] [ROUNDS=3] [STEPS=400]: what
# watching a run costs. One training job (bench/monitor_overhead.py, 2 CPU
# workers under zlaunch --log-dir) configured with every watcher —
# csv_monitor, tensorboard, wall_clock_breakdown, comms_logger, the flops
# profiler (one step, in the warm-up), the trace of every step and the run
# log — whose steps have the watchers off or on at random, ROUNDS times.
# Prints each round's median step time off and on and the observer's hooks
# alone, and a last line
# monitors_on_vs_off_step_time_ratio=<median over rounds of on / off>
# monitor_hook_cost_per_step_us=<hooks on - off> monitor_hook_cost_vs_step=<that / step>
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${2:-3}
steps=${3:-400}
export PYTHONPATH=$PWD/$build/python${PYTHONPATH:+:$PYTHONPATH}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/on.json" <<JSON
{"train_micro_batch_size_per_gpu": 32, "steps_per_print": 1000000,
 "optimizer": {"type": "AdamW", "params": {"lr": 1e-4}},
 "zero_optimization": {"stage": 2, "reduce_bucket_size": 300000}, "wall_clock_breakdown": true,
 "csv_monitor": {"enabled": true, "output_path": "$work/csv", "job_name": "bench"},
 "tensorboard": {"enabled": true, "output_path": "$work/tb", "job_name": "bench"},
 "comms_logger": {"enabled": true},
 "flops_profiler": {"enabled": true, "profile_step": 2, "output_file": "$work/flops.txt"},
 "zshard": {"trace": {"enabled": true, "output_path": "$work/trace"}}}
JSON
echo "monitoring overhead on 2 CPU workers ($(hostname), $(nproc) cores): 4x512 MLP, batch 32/rank, ZeRO-2"
printf "%-6s %12s %12s %8s %14s %14s\n" round off_step_ms on_step_ms on/off off_hooks_us on_hooks_us
median() { printf "%s\n" "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratios=() costs=() steps_s=()
for r in $(seq 1 "$rounds"); do
  read -r off on hook_on hook_off <<<"$("$build/zlaunch" --nproc-per-node 2 --log-dir "$work/logs$r" --tee \
    bench/monitor_overhead.py "$work/on.json" "$steps" 2>&1 | sed -n 's/^\[rank 0\] RESULT //p')"
  ratios+=("$(echo "$on / $off" | bc -l)")
  costs+=("$(echo "($hook_on - $hook_off) * 1000000" | bc -l)")
  steps_s+=("$off")
  printf "%-6s %12.3f %12.3f %8.4f %14.1f %14.1f\n" "$r" "$(echo "$off * 1000" | bc -l)" "$(echo "$on * 1000" | bc -l)" \
    "${ratios[-1]}" "$(echo "$hook_off * 1000000" | bc -l)" "$(echo "$hook_on * 1000000" | bc -l)"
done
cost=$(median "${costs[@]}")
echo "trace slices of the last round, rank 0: $(grep -o '"ph":"X"' "$work/trace/trace_rank0.json" | wc -l)"
echo "monitors_on_vs_off_step_time_ratio=$(printf %.4f "$(median "${ratios[@]}")")" \
  "monitor_hook_cost_per_step_us=$(printf %.1f "$cost")" \
  "monitor_hook_cost_vs_step=$(printf %.5f "$(echo "$cost / ($(median "${steps_s[@]}") * 1000000)" | bc -l)")"
