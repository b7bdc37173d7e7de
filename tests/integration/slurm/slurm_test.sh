#!/usr/bin/env bash
# slurm_test.sh ZLAUNCH PROBE: the launcher and the runtime under a real
# two-node Slurm started here (slurm_cluster.sh), with --mpi=pmix:
#  1. srun -N2 --ntasks-per-node=1 zlaunch --nproc-per-node 2: 4 workers,
#     distinct ranks 0..3, consistent variables, a Gloo allreduce across all;
#  2. srun -N2 --ntasks-per-node=2 (one task per GPU, no zlaunch): the
#     runtime bootstraps from PMIx the same way;
#  3. a worker on node 1 exits 3: zlaunch on both nodes stops within 10 s,
#     names rank and code, and no process of the job is left;
#  4. a single-node step; 5. srun without PMIx (SLURM_* variables and
#     ZSHARD_JOB_TOKEN), per node and per task; 6. plain zlaunch in an
#     allocation (salloc), which runs srun itself; 7. a checkpoint saved by
#     4 Python workers on 2 nodes resumes on 3 workers on one node and
#     retraces the uninterrupted run (PYTHON_ROOT: the built zshard package);
#  8. a DeepSpeed MNIST-style script runs unchanged with one task per worker
#     (no ZSHARD_JOB_TOKEN needed: the store address goes through torch's);
#  9. preemption: SIGUSR1 to a two-node step (scancel --signal, what
#     --signal=USR1@T sends) makes every rank save and the step exit 75; the
#     rerun on one node with 3 workers resumes by itself and ends where an
#     uninterrupted run would; 10. kill -9 of node 1's zlaunch ends the step
#     within seconds.
set -uo pipefail
zlaunch=$1 probe=$2 python_root=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/zshard-slurm.XXXXXX)
cleanup() {
  "$here/slurm_cluster.sh" stop "$dir"
  rm -rf "$dir"
}
trap cleanup EXIT
SLURM_CONF=$("$here/slurm_cluster.sh" start "$dir") || exit 1
export SLURM_CONF
failures=0
check() {  # check NAME CONDITION-OUTPUT...
  if [ "$2" = ok ]; then echo "ok   $1"; else echo "FAIL $1: $2"; failures=$((failures + 1)); fi
}
ranks_ok() {  # the output has "probe rank R of 4" for R = 0..3 and nothing else wrong
  for r in 0 1 2 3; do grep -q "probe rank $r of 4 " <<<"$1" || { echo "rank $r missing"; return; }; done
  echo ok
}

out=$(timeout 60 srun -N2 --ntasks-per-node=1 --mpi=pmix "$zlaunch" --nproc-per-node 2 "$probe" 2>&1)
rc=$?
echo "$out"
check "zlaunch per node: exit 0" "$([ $rc = 0 ] && echo ok || echo "exit $rc")"
check "zlaunch per node: 4 ranks" "$(ranks_ok "$out")"
check "zlaunch per node: node 1 has local ranks" \
  "$(grep -q 'local 1/2 node 1/2 source zlaunch ok' <<<"$out" && echo ok || echo missing)"

out=$(timeout 60 srun -N2 --ntasks-per-node=2 --mpi=pmix "$probe" 2>&1)
rc=$?
echo "$out"
check "task per GPU: exit 0" "$([ $rc = 0 ] && echo ok || echo "exit $rc")"
check "task per GPU: 4 ranks from PMIx" "$(ranks_ok "$out")"
check "task per GPU: source pmix" "$(grep -q 'node 1/2 source pmix ok' <<<"$out" && echo ok || echo missing)"

start=$(date +%s.%N)
out=$(timeout 60 srun -N2 --ntasks-per-node=1 --mpi=pmix "$zlaunch" --nproc-per-node 2 --grace-period 1 \
  "$probe" --fail-rank 3 --code 3 --sleep 0.2 2>&1)
rc=$?
took=$(echo "$(date +%s.%N) - $start" | bc)
echo "$out"
check "failure: non-zero exit" "$([ $rc != 0 ] && echo ok || echo "exit 0")"
check "failure: within 10 s" "$([ "$(echo "$took < 10" | bc)" = 1 ] && echo ok || echo "took $took s")"
check "failure: root cause names rank 3, node 1, exit code 3" \
  "$(grep -q 'rank 3 (node 1, local rank 1) ended with exit code 3' <<<"$out" && echo ok || echo missing)"
sleep 0.5
left=$(pgrep -c -x worker_probe || true)
check "failure: no process left" "$([ "${left:-0}" = 0 ] && echo ok || echo "$left left")"

# 4. a single-node step: one zlaunch, 2 workers.
out=$(timeout 60 srun -N1 -n1 --mpi=pmix "$zlaunch" --nproc-per-node 2 "$probe" 2>&1)
rc=$?
echo "$out"
check "single node: exit 0" "$([ $rc = 0 ] && echo ok || echo "exit $rc")"
check "single node: 2 ranks" "$(grep -q 'probe rank 1 of 2 local 1/2 node 0/1 source zlaunch ok' <<<"$out" && echo ok || echo missing)"

# 5. srun without PMIx: controllers (and, without zlaunch, tasks) meet through
#    SLURM_* variables and the job token.
export ZSHARD_JOB_TOKEN=slurm-test-token
# The test nodes' names (n1, n2) do not resolve; on a cluster they do and
# node 0 is the first host of SLURM_STEP_NODELIST. MASTER_ADDR overrides it.
export MASTER_ADDR=127.0.0.1
out=$(timeout 60 srun -N2 --ntasks-per-node=1 "$zlaunch" --nproc-per-node 2 "$probe" 2>&1)
rc=$?
echo "$out"
check "no PMIx, zlaunch per node: exit 0" "$([ $rc = 0 ] && echo ok || echo "exit $rc")"
check "no PMIx, zlaunch per node: 4 ranks" "$(ranks_ok "$out")"
out=$(timeout 60 srun -N2 --ntasks-per-node=2 "$probe" 2>&1)
rc=$?
echo "$out"
check "no PMIx, task per GPU: exit 0" "$([ $rc = 0 ] && echo ok || echo "exit $rc")"
check "no PMIx, task per GPU: source slurm" "$(grep -q 'node 1/2 source slurm ok' <<<"$out" && echo ok || echo missing)"
unset ZSHARD_JOB_TOKEN MASTER_ADDR

# 6. plain zlaunch in a two-node allocation (salloc, outside a step) runs
#    one controller per node through srun itself.
out=$(timeout 60 salloc -N2 "$zlaunch" --nproc-per-node 2 "$probe" 2>&1)
rc=$?
echo "$out"
check "allocation: exit 0" "$([ $rc = 0 ] && echo ok || echo "exit $rc")"
check "allocation: 4 ranks over 2 nodes" "$(ranks_ok "$out")"

# 7. Checkpoints across nodes (the nodes share this host's file system).
if [ -n "$python_root" ]; then
  worker="$here/../../python/ckpt_check.py"
  export PYTHONPATH="$python_root" ZSHARD_PYTHON=/usr/bin/python3
  out=$(timeout 120 srun -N2 --ntasks-per-node=1 --mpi=pmix "$zlaunch" --nproc-per-node 2 "$worker" \
    --phase train --dir "$dir/ckpt" --record "$dir/ref.pt" 2>&1)
  rc=$?
  check "checkpoint: saved by 4 workers on 2 nodes" "$([ $rc = 0 ] && echo ok || echo "exit $rc: $out")"
  out=$(timeout 120 srun -N1 -n1 --mpi=pmix "$zlaunch" --nproc-per-node 3 "$worker" \
    --phase resume --dir "$dir/ckpt" --record "$dir/resumed.pt" 2>&1)
  rc=$?
  check "checkpoint: resumed by 3 workers on 1 node" "$([ $rc = 0 ] && echo ok || echo "exit $rc: $out")"
  check "checkpoint: the resumed run retraces the saved one" "$(/usr/bin/python3 -c "
import torch
ref, got = torch.load('$dir/ref.pt'), torch.load('$dir/resumed.pt')
err = max(((got['final'][k] - ref['final'][k]).abs().max() / ref['final'][k].abs().max().clamp(min=1e-30)).item()
          for k in ref['final'])
print('ok' if err < 1e-6 and got['lrs'] == ref['lrs'] else f'relative error {err}')" 2>&1)"

  # 8. A DeepSpeed MNIST-style script, unchanged, one Slurm task per worker
  #    (no zlaunch): PMIx, then SLURM_* variables only (torch's store holds
  #    the master port; zshard's store is found through it).
  mnist="$here/../../python/mnist_style.py"
  echo '{"train_micro_batch_size_per_gpu": 8, "dataloader_drop_last": true, "steps_per_print": 1000,
         "optimizer": {"type": "Adam", "params": {"lr": 0.001}}, "zero_optimization": {"stage": 2}}' \
    >"$dir/mnist.json"
  for mpi in pmix none; do
    out=$(MASTER_ADDR=127.0.0.1 timeout 180 srun -N2 --ntasks-per-node=1 \
      --mpi=$mpi /usr/bin/python3 "$mnist" --deepspeed --deepspeed_config "$dir/mnist.json" 2>&1)
    rc=$?
    check "DeepSpeed MNIST script, task per worker, --mpi=$mpi" \
      "$([ $rc = 0 ] && grep -q 'MNIST MATCH .* steps 12' <<<"$out" && echo ok || echo "exit $rc: $out")"
  done
  # `import deepspeed` with the alias on the path, as per_gpu_task.sbatch puts it.
  out=$(PYTHONPATH="$python_root:$python_root/../python-alias" timeout 180 srun -N2 --ntasks-per-node=1 \
    --mpi=pmix /usr/bin/python3 "$here/../../python/deepspeed_api/torch_distributed_metrics.py" 2>&1)
  rc=$?
  check "import deepspeed script, task per worker, alias on the path" \
    "$([ $rc = 0 ] && grep -q 'torch_distributed_metrics MATCH' <<<"$out" && grep -q "import deepspeed: zshard's alias" <<<"$out" && echo ok || echo "exit $rc: $out")"
fi

# 10. kill -9 of node 1's zlaunch: node 0's stops within seconds (heartbeats),
#     not after two 10-minute barriers (1201 s before).
timeout 120 srun -N2 --ntasks-per-node=1 --mpi=pmix -J zliveness "$zlaunch" --nproc-per-node 1 \
  --grace-period 1 sleep 97.531 >"$dir/liveness.log" 2>&1 &
step=$!
node1=""
for _ in $(seq 300); do
  for pid in $(pgrep -f "zlaunch --nproc-per-node 1 --grace-period 1 sleep 97.531"); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_NODEID=1" && node1=$pid
  done
  [ -n "$node1" ] && [ "$(pgrep -fc '^sleep 97.531')" -ge 2 ] && break
  sleep 0.1
done
start=$(date +%s.%N)
kill -9 "$node1"
wait $step
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "node 0 stopped ${elapsed} s after kill -9 of node 1's zlaunch under Slurm"
check "liveness: node 1's zlaunch killed, the step ends within 15 s" \
  "$(awk -v e="$elapsed" 'BEGIN { print (e < 15) ? "ok" : "took " e " s" }')"
check "liveness: no worker left" "$([ "$(pgrep -fc '^sleep 97.531')" = 0 ] && echo ok || echo left)"

# 9. Preemption across node counts (python/preempt_check.py).
if [ -n "$python_root" ]; then
  worker="$here/../../python/preempt_check.py"
  export PYTHONPATH="$python_root" ZSHARD_PYTHON=/usr/bin/python3
  mkdir -p "$dir/preempt"
  timeout 120 srun -N2 --ntasks-per-node=1 --mpi=pmix -J zpreempt "$zlaunch" --nproc-per-node 1 \
    --grace-period 10 "$worker" "$dir/preempt" 12 >"$dir/preempt.log" 2>&1 &
  step=$!
  for _ in $(seq 600); do grep -q "STEP 3" "$dir/preempt.log" 2>/dev/null && break; sleep 0.1; done
  job=$(squeue -h -n zpreempt -o %A | head -1)
  scancel --signal=USR1 "$job"
  wait $step
  rc=$?
  out=$(cat "$dir/preempt.log")
  check "preemption: the two-node step saved and exited 75" \
    "$([ $rc = 75 ] && grep -q 'preempted (SIGUSR1): checkpoint saved' <<<"$out" && echo ok || echo "exit $rc: $out")"
  out=$(timeout 120 srun -N1 -n1 --mpi=pmix "$zlaunch" --nproc-per-node 3 "$worker" "$dir/preempt" 12 2>&1)
  rc=$?
  check "preemption: resumed on 1 node x 3 workers, the same training" \
    "$([ $rc = 0 ] && grep -q 'resumed from' <<<"$out" && grep -q 'PREEMPT MATCH' <<<"$out" && echo ok || echo "exit $rc: $out")"
fi

echo "$failures failures"
exit $((failures > 0))
