#!/usr/bin/env bash
# bench/gpt_gpu.sh [PYTHONPATH_ROOT=build/python]: the example GPT (~355M
# parameters) on one GPU, zshard ZeRO-2 bf16 against torch's fused AdamW
# with autocast, in this one run, each side in its own process (peak device
# memory of its own): step time, tokens/s, peak memory and the ratios
# zshard/torch. Last line: zshard_vs_torch_gpt_step=<r> zshard_vs_torch_gpt_mem=<r>.
# Needs a GPU and a zshard Python module importable by this python3 (the
# one under PYTHONPATH_ROOT); exits 0 saying so when either is missing.
# Run by tests/gpu/run_on_gpu.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-build/python}
python=${PYTHON:-python3}
if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpt_gpu: no GPU visible to $python's torch; nothing measured"
  exit 0
fi
if ! PYTHONPATH="$root" "$python" -c "import zshard" 2>/tmp/gpt_gpu_import.txt; then
  echo "gpt_gpu: zshard is not importable from $root by $python ($("$python" --version 2>&1)):"
  tail -n 1 /tmp/gpt_gpu_import.txt
  echo "build the module for this interpreter (tests/gpu/build_python_ext.sh) and rerun"
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
results=()
for impl in torch zshard; do
  line=$(PYTHONPATH="$root" "$python" bench/gpt_gpu.py --impl "$impl" "${@:2}" | grep '^RESULT ')
  echo "$line"
  results+=("${line#RESULT }")
done
"$python" - "${results[@]}" <<'PY'
import json, sys
t, z = (json.loads(a) for a in sys.argv[1:3])
print(f"{'impl':8} {'params':>12} {'step ms':>9} {'tokens/s':>10} {'peak GiB':>9} {'loss':>8}")
for r in (t, z):
    print(f"{r['impl']:8} {r['params']:12d} {r['step_ms']:9.1f} {r['tokens_per_s']:10.0f} {r['peak_gib']:9.2f} {r['loss']:8.4f}")
print(f"zshard_vs_torch_gpt_step={z['step_ms'] / t['step_ms']:.3f} "
      f"zshard_vs_torch_gpt_mem={z['peak_gib'] / t['peak_gib']:.3f}")
PY
