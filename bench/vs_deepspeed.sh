#!/usr/bin/env bash
# bench/vs_deepspeed.sh [BUILD_DIR=build] [CASES="mlp:0:fp32 ..."] [STEPS=20]:
# zshard against the real DeepSpeed, side by side in this one run: each case
# (model:stage:dtype, with :overlap for overlap_comm true on both sides) is
# bench/vs_deepspeed.py on 2 CPU ranks, started the
# same way for both (torch.distributed's env:// variables, 1 thread per
# rank, the same model, seed, data and ds.json). Prints per case and
# implementation the median forward/backward/step times, each rank's peak
# RSS (whole run and training), the last loss, the parameter checksum, the
# largest relative difference between the two runs' parameters (per tensor,
# by norm) and the ratios zshard/DeepSpeed; the last line is
# zshard_vs_deepspeed_step=<geo-mean of step-time ratios> zshard_vs_deepspeed_mem=<geo-mean of peak ratios>
# DeepSpeed stage 3 on CPU ranks needs numactl (Debian package). DeepSpeed comes from DSPEER (default ~/.cache/dspeer: its env_ds.sh puts
# DeepSpeed 0.14.5 on PYTHONPATH); without it this says how to get it and
# exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cases=${2:-"mlp:0:fp32 mlp:1:fp32 mlp:2:fp32 mlp:3:fp32 mlp:1:fp32:overlap mlp:2:fp32:overlap mlp:1:bf16 mlp:2:bf16 gpt:1:fp32 gpt:2:fp32"}
steps=${3:-20}
dspeer=${DSPEER:-$HOME/.cache/dspeer}
python=/usr/bin/python3
if ! (source "$dspeer/env_ds.sh" 2>/dev/null && "$python" -c "import deepspeed" >/dev/null 2>&1); then
  echo "vs_deepspeed: DeepSpeed is not importable (looked for $dspeer/env_ds.sh); to run it, build"
  echo "DeepSpeed 0.14.5 for CPU ranks with a microsoft/DeepSpeed git mirror:"
  echo "  DS_MIRROR=<git dir> bash <peers>/deepspeed/run_ds.sh setup   (or set DSPEER to such a folder)"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$((30000 + $$ % 20000))

# run IMPL MODEL STAGE DTYPE [overlap]: both ranks' RESULT lines into $work/<case>.<impl>
run() {
  local impl=$1 out="$work/$2-$3-$4${5:+-$5}.$1" pids=() env_file=/dev/null
  [ "$impl" = deepspeed ] && env_file="$dspeer/env_ds.sh"
  port=$((port + 1))
  for r in 0 1; do
    (
      # shellcheck disable=SC1090
      source "$env_file"
      [ "$impl" = zshard ] && export PYTHONPATH=$PWD/$build/python${PYTHONPATH:+:$PYTHONPATH}
      RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
        OMP_NUM_THREADS=1 exec "$python" bench/vs_deepspeed.py --impl "$impl" --model "$2" --stage "$3" \
        --dtype "$4" ${5:+--overlap} --steps "$steps" --params "$out.params" >"$out.rank$r" 2>&1
    ) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do
    wait "$p" || { echo "vs_deepspeed: $impl $2 stage $3 $4 failed:"; for f in "$out".rank*; do tail -n 20 "$f"; done; exit 1; }
  done
}

for c in $cases; do
  IFS=: read -r model stage dtype overlap <<<"$c"
  run deepspeed "$model" "$stage" "$dtype" $overlap
  run zshard "$model" "$stage" "$dtype" $overlap
done

"$python" - "$work" "$cases" "$(hostname)" "$(nproc)" <<'PY'
import glob, json, math, os, sys
import torch
work, cases, host, cores = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]

def results(case, impl):
    rows = []
    for path in sorted(glob.glob(f"{work}/{case}.{impl}.rank*")):
        line = [l for l in open(path) if l.startswith("RESULT ")][-1]
        rows.append(json.loads(line[len("RESULT "):]))
    return rows

def max_rel(a, b):
    return max(float((x - y).norm() / y.norm().clamp_min(1e-30)) for x, y in zip(a, b))

print(f"zshard vs DeepSpeed 0.14.5 on 2 CPU ranks ({host}, {cores} cores), 1 thread per rank; "
      "times: median ms per step; peaks: MiB per rank (rank 0/rank 1)")
print(f"{'case':<20} {'impl':<10} {'fwd':>8} {'bwd':>8} {'step':>8} {'total':>8} {'whole_peak':>13} "
      f"{'train_peak':>13} {'loss':>10} {'checksum':>14}")
step_ratios, mem_ratios, worst = [], [], []
for case in cases:
    name = case.replace(":", "-")
    per = {}
    for impl in ("deepspeed", "zshard"):
        rows = results(name, impl)
        total = max(r["forward_ms"] + r["backward_ms"] + r["step_ms"] for r in rows)
        whole = [max(r["init_peak_mib"], r["train_peak_mib"]) for r in rows]
        per[impl] = (total, max(whole))
        r0 = rows[0]
        print(f"{case:<20} {impl:<10} {r0['forward_ms']:8.1f} {r0['backward_ms']:8.1f} {r0['step_ms']:8.1f} "
              f"{total:8.1f} {'/'.join(f'{w:.0f}' for w in whole):>13} "
              f"{'/'.join(str(round(r['train_peak_mib'])) for r in rows):>13} {r0['loss']:10.5f} "
              f"{r0['checksum']:14.6f}")
    diff = max_rel(torch.load(f"{work}/{name}.zshard.params"), torch.load(f"{work}/{name}.deepspeed.params"))
    s, m = per["zshard"][0] / per["deepspeed"][0], per["zshard"][1] / per["deepspeed"][1]
    step_ratios.append(s)
    mem_ratios.append(m)
    print(f"{case:<20} {'ratio':<10} step {s:.3f}  peak memory {m:.3f}  parameters' max relative difference {diff:.2e}")
geo = lambda v: math.exp(sum(map(math.log, v)) / len(v))
print(f"zshard_vs_deepspeed_step={geo(step_ratios):.3f} zshard_vs_deepspeed_mem={geo(mem_ratios):.3f}")
PY
