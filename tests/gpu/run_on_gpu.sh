#!/usr/bin/env bash
# run_on_gpu.sh [BUNDLE=build/gpu-bundle]: runs every GPU test and the GPU
# benchmark on a GPU machine, from the bundle made by make_bundle.sh on a
# build machine (carried over), or builds one first when a full toolchain is
# here. Prints the benchmark table; exits non-zero if any test failed.
# Writes results under $OUT when it is set. Target: under 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/../.."
bundle=${1:-build/gpu-bundle}
if [ ! -x "$bundle/bin/gpu_kernels_test" ]; then
  echo "no bundle at $bundle: building one"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && tests/gpu/make_bundle.sh build || exit 2
fi
out=${OUT:-/tmp/zshard-gpu}
mkdir -p "$out"
nccl_lib=$(python3 -c "import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) + '/lib')" 2>/dev/null || true)
export LD_LIBRARY_PATH="$bundle/lib:${nccl_lib}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export NCCL_SOCKET_IFNAME=lo NCCL_DEBUG=WARN
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
status=0
for t in "$bundle"/bin/gpu_*_test; do
  name=$(basename "$t")
  echo "== $name"
  if ! timeout 240 "$t" --gtest_brief=1 > "$out/$name.log" 2>&1; then
    status=1
  fi
  grep -E "PASSED|FAILED|SKIPPED|Failure|difference" "$out/$name.log" | head -40
done
echo "== zlaunch on the GPU node (default: one worker per GPU) with the GPU-use report"
"$bundle/bin/zlaunch" --version | tee "$out/zlaunch.txt"
timeout 120 "$bundle/bin/zlaunch" --monitor-interval 0.2 python3 -c \
  "import os, torch; x = torch.randn(8192, 8192, device='cuda'); [x @ x for _ in range(400)]; torch.cuda.synchronize(); print('rank', os.environ['RANK'], 'of', os.environ['WORLD_SIZE'], 'done')" \
  2>&1 | tee -a "$out/zlaunch.txt" || status=1
grep -q "GPU 0: used, mean utilisation" "$out/zlaunch.txt" || { echo "no GPU-use report"; status=1; }
echo "== bench_optim_gpu"
timeout 240 "$bundle/bin/bench_optim_gpu" 29 python3 bench/torch_adamw_gpu.py | tee "$out/bench.txt" || status=1
echo "== bench/gpt_gpu (zshard ZeRO-2 bf16 vs torch fused AdamW + autocast, ~355M-parameter GPT)"
if tests/gpu/build_python_ext.sh "$bundle" /tmp/zshard-python > "$out/python_ext.txt" 2>&1; then
  timeout 300 bench/gpt_gpu.sh /tmp/zshard-python 2>&1 | tee "$out/gpt_gpu.txt" || status=1
else
  echo "the Python module did not build here:"; tail -n 20 "$out/python_ext.txt"; status=1
fi
echo "== bench_ckpt (the GPU machine's disk, 1 GiB of state on 2 ranks)"
lscpu | grep -E "Model name|^CPU\(s\)" | tee "$out/ckpt_bench.txt"
df -h /tmp | tail -1 | tee -a "$out/ckpt_bench.txt"
timeout 150 "$bundle/bin/bench_ckpt" --gib 1 --reps 6 --dir /tmp/zshard_ckpt_bench 2>&1 | grep -v INFO |
  tee -a "$out/ckpt_bench.txt" || status=1
exit $status
