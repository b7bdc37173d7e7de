#!/usr/bin/env bash
# bench/zero_vs_ddp.sh [BUILD_DIR=build]: ZeRO-2 on 2 CPU workers against torch
# DDP (gloo) + torch AdamW on 2 workers, same model (about 25M parameters) and
# data, both started by zlaunch in the same run. Prints step time and per-rank
# peak memory (RSS) of each, and a last line
# zero2_vs_ddp_step_time_ratio=<zshard/ddp> zero2_vs_ddp_memory_ratio=<zshard/ddp>.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
export PYTHONPATH=$PWD/$build/python${PYTHONPATH:+:$PYTHONPATH}
export BENCH_DDP_PORT=$((30000 + $$ % 20000))
run() { "$build/zlaunch" --nproc-per-node 2 bench/zero_vs_ddp.py "$1" 2>&1 | grep RESULT; }
zshard_out=$(run zshard)
ddp_out=$(run ddp)
stat() {  # stat OUTPUT FIELD: max over ranks
  awk -v f="$2" '{ if ($(f) > m) m = $(f) } END { print m }' <<<"$1" | tail -1
}
zs_time=$(stat "$(sed 's/.*RESULT //' <<<"$zshard_out")" 2)
zs_mem=$(stat "$(sed 's/.*RESULT //' <<<"$zshard_out")" 3)
ddp_time=$(stat "$(sed 's/.*RESULT //' <<<"$ddp_out")" 2)
ddp_mem=$(stat "$(sed 's/.*RESULT //' <<<"$ddp_out")" 3)
echo "ZeRO-2 vs DDP on 2 CPU workers ($(hostname), $(nproc) cores), max over ranks"
printf "%-36s %12s %16s\n" "what" "step time s" "peak RSS MiB"
printf "%-36s %12s %16s\n" "zshard ZeRO-2 (fused AdamW)" "$zs_time" "$zs_mem"
printf "%-36s %12s %16s\n" "torch DDP gloo + torch AdamW" "$ddp_time" "$ddp_mem"
echo "zero2_vs_ddp_step_time_ratio=$(echo "scale=3; $zs_time / $ddp_time" | bc) zero2_vs_ddp_memory_ratio=$(echo "scale=3; $zs_mem / $ddp_mem" | bc)"
