#!/usr/bin/env bash
# bench/monitor_overhead.sh [BUILD_DIR=build] [ROUNDS=5] [STEPS=60]: what
# watching a run costs. The same training (bench/monitor_overhead.py, 2 CPU
# workers under zlaunch) with every monitor off, and with all of them on —
# csv_monitor, tensorboard, wall_clock_breakdown, comms_logger, the flops
# profiler (one step, in the warm-up), the trace of every step and
# zlaunch's run log (--log-dir) — alternated ROUNDS times in this one run.
# Prints each round's median step time and the watchers' hooks run alone
# (their cost per step without training's noise), and a last line
# monitors_on_vs_off_step_time_ratio=<median on / median off>
# monitor_hook_cost_per_step_us=<on - off hooks> monitor_hook_cost_vs_step=<that / step>
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${2:-5}
steps=${3:-60}
export PYTHONPATH=$PWD/$build/python${PYTHONPATH:+:$PYTHONPATH}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base='"train_micro_batch_size_per_gpu": 32, "steps_per_print": 1000000,
  "optimizer": {"type": "AdamW", "params": {"lr": 1e-4}},
  "zero_optimization": {"stage": 2, "reduce_bucket_size": 300000}'
echo "{$base}" >"$work/off.json"
cat >"$work/on.json" <<JSON
{$base, "wall_clock_breakdown": true,
 "csv_monitor": {"enabled": true, "output_path": "$work/csv", "job_name": "bench"},
 "tensorboard": {"enabled": true, "output_path": "$work/tb", "job_name": "bench"},
 "comms_logger": {"enabled": true},
 "flops_profiler": {"enabled": true, "profile_step": 2, "output_file": "$work/flops.txt"},
 "zshard": {"trace": {"enabled": true, "output_path": "$work/trace"}}}
JSON
run() {  # $1: off|on -> the median step seconds of rank 0
  local extra=()
  [ "$1" = on ] && extra=(--log-dir "$work/logs" --tee)
  "$build/zlaunch" --nproc-per-node 2 "${extra[@]}" bench/monitor_overhead.py "$work/$1.json" "$steps" 2>&1 |
    sed -n 's/^\[rank 0\] RESULT //p'
}
echo "monitoring overhead on 2 CPU workers ($(hostname), $(nproc) cores): 4x512 MLP, batch 32/rank, ZeRO-2"
printf "%-6s %14s %14s %16s %16s\n" round off_step_ms on_step_ms off_hooks_us on_hooks_us
offs=() ons=() off_hooks=() on_hooks=()
for r in $(seq 1 "$rounds"); do
  read -r off off_hook <<<"$(run off)"
  read -r on on_hook <<<"$(run on)"
  offs+=("$off") ons+=("$on") off_hooks+=("$off_hook") on_hooks+=("$on_hook")
  printf "%-6s %14.3f %14.3f %16.1f %16.1f\n" "$r" "$(echo "$off * 1000" | bc -l)" "$(echo "$on * 1000" | bc -l)" \
    "$(echo "$off_hook * 1000000" | bc -l)" "$(echo "$on_hook * 1000000" | bc -l)"
done
median() { printf "%s\n" "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
off=$(median "${offs[@]}")
on=$(median "${ons[@]}")
echo "trace slices written per rank: $(grep -o '"ph":"X"' "$work/trace/trace_rank0.json" | wc -l)"
hook_cost=$(echo "($(median "${on_hooks[@]}") - $(median "${off_hooks[@]}")) * 1000000" | bc -l)
echo "monitors_on_vs_off_step_time_ratio=$(echo "scale=4; $on / $off" | bc)" \
  "monitor_hook_cost_per_step_us=$(printf %.1f "$hook_cost")" \
  "monitor_hook_cost_vs_step=$(echo "scale=5; $hook_cost / ($off * 1000000)" | bc)"
