#!/usr/bin/env bash
# bench/launch_bench.sh [BUILD_DIR=build]: how fast jobs start.
# Side by side in one run, best of 5 (wall time until every worker ran a
# no-op Python script): zlaunch --nproc-per-node 2, mpirun -np 2, and srun -n 2
# under a test Slurm started here (tests/integration/slurm/slurm_cluster.sh,
# when slurmctld is installed). Then rendezvous times with the runtime (Gloo
# allreduce through the job store) for 64 local workers, and for 2
# controllers x 8 workers under the two-node test Slurm with --mpi=pmix.
# Last line: launch_ratio_vs_mpirun=<zlaunch time / mpirun time>.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
zlaunch=$build/zlaunch
probe=$build/tests/worker_probe
py=/usr/bin/python3
work=$(mktemp -d /tmp/zshard-launch.XXXXXX)
slurm_dir=""
cleanup() {
  [ -n "$slurm_dir" ] && tests/integration/slurm/slurm_cluster.sh stop "$slurm_dir"
  rm -rf "$work" ${slurm_dir:+"$slurm_dir"}
}
trap cleanup EXIT
echo "pass" >"$work/noop.py"

best() {  # best of 5 wall-clock seconds of "$@" (output discarded; must succeed)
  local best=999 t0 t
  for _ in 1 2 3 4 5; do
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; echo nan; return; }
    t=$(echo "$(date +%s.%N) - $t0" | bc)
    best=$(echo "if ($t < $best) $t else $best" | bc)
  done
  printf "%.3f" "$best"
}

t_zlaunch=$(best "$zlaunch" --nproc-per-node 2 "$work/noop.py")
t_mpirun=nan
command -v mpirun >/dev/null && t_mpirun=$(best mpirun --allow-run-as-root --oversubscribe -np 2 "$py" "$work/noop.py")
t_srun=nan t_slurm16=nan
if command -v slurmctld >/dev/null || [ -x /usr/sbin/slurmctld ]; then
  slurm_dir=$(mktemp -d /tmp/zshard-slurm.XXXXXX)
  if SLURM_CONF=$(tests/integration/slurm/slurm_cluster.sh start "$slurm_dir"); then
    export SLURM_CONF
    t_srun=$(best srun -n 2 "$py" "$work/noop.py")
    t_slurm16=$(best srun -N2 --ntasks-per-node=1 --mpi=pmix "$zlaunch" --nproc-per-node 8 "$probe")
  fi
fi
t_local64=$(best "$zlaunch" --nproc-per-node 64 "$probe")

echo "Launch and rendezvous times on $(hostname) ($(nproc) cores), best of 5"
printf "%-62s %8s\n" "what" "seconds"
printf "%-62s %8s\n" "zlaunch --nproc-per-node 2 (no-op Python workers)" "$t_zlaunch"
printf "%-62s %8s\n" "mpirun -np 2 (same script)" "$t_mpirun"
printf "%-62s %8s\n" "srun -n 2 under the test Slurm (same script)" "$t_srun"
printf "%-62s %8s\n" "zlaunch 64 local workers: store + Gloo mesh + allreduce" "$t_local64"
printf "%-62s %8s\n" "srun --mpi=pmix, 2 zlaunch x 8 workers: rendezvous + allreduce" "$t_slurm16"
ratio=nan
[ "$t_mpirun" != nan ] && [ "$t_zlaunch" != nan ] && ratio=$(echo "scale=3; $t_zlaunch / $t_mpirun" | bc)
echo "launch_ratio_vs_mpirun=$ratio"
