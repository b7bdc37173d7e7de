#!/usr/bin/env bash
# sbatch_templates_test.sh ZLAUNCH SOURCE_DIR: every sbatch template parses,
# asks for 4 GPUs per node, runs its step with --mpi=pmix, and the config it
# uses by default passes check-config for the world size it would compute.
set -euo pipefail
zlaunch=$1 src=$2
count=0
for t in "$src"/configs/slurm/*.sbatch; do
  count=$((count + 1))
  bash -n "$t"
  grep -Eq '^#SBATCH --(gpus-per-node=4|ntasks-per-node=4)' "$t" || { echo "$t: not 4 GPUs per node" >&2; exit 1; }
  grep -q 'srun .*--mpi=pmix' "$t" || { echo "$t: srun without --mpi=pmix" >&2; exit 1; }
  config=$(sed -n 's/^CONFIG=\${CONFIG:-\(.*\)}$/\1/p' "$t")
  [ -n "$config" ] || { echo "$t: no default CONFIG" >&2; exit 1; }
  "$zlaunch" check-config --world-size 8 "$src/$config" >/dev/null
done
[ "$count" -ge 2 ] || { echo "expected 2 templates, found $count" >&2; exit 1; }
echo "$count sbatch templates OK"
