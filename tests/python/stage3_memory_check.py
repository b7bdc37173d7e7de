"""A worker for test_stage3.py's memory test, run under zlaunch: a deep
MLP (LAYERS x HIDDEN^2 parameters) built under zero.Init and trained two
steps at stage 3 in bf16 with SGD. Writes, per rank, to OUT_DIR/rank<r>.json:
the peak RSS (VmHWM) above the process's RSS once torch.distributed is up,
during construction and over the whole run, and how far the peak already
was above it then ("before": the measure is an upper bound below that); the engine's own account (session.memory()); the fetcher's peak
of gathered bytes; a checkpoint (OUT_DIR/ckpt, tag t) and layer 0's
16-bit weight (OUT_DIR/layer0.pt). argv: OUT_DIR."""
import json
import os
import sys

import torch
import torch.nn as nn

import zshard
from zshard.stage3 import gathered_parameters as GatheredParameters
from zshard.zero_init import Init
from proc_status import status

HIDDEN, LAYERS, MICRO = 1024, 32, 4


class Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(HIDDEN, HIDDEN, bias=False) for _ in range(LAYERS))

    def forward(self, x):
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x


def main(out):
    zshard.init_distributed()
    torch.manual_seed(0)
    base, before = status("VmRSS"), status("VmHWM")  # (resetting VmHWM by clear_refs inflates the RSS)
    with Init():
        model = Deep()
    built = status("VmHWM") - base
    assert model.layers[0].weight.numel() == 0
    engine, _, _, _ = zshard.initialize(model=model, config={
        "train_micro_batch_size_per_gpu": MICRO, "bf16": {"enabled": True},
        "optimizer": {"type": "SGD", "params": {"lr": 1e-3}},
        "zero_optimization": {"stage": 3, "reduce_bucket_size": HIDDEN * HIDDEN,
                              "stage3_param_persistence_threshold": 0,
                              "stage3_prefetch_bucket_size": HIDDEN * HIDDEN,
                              "stage3_max_live_parameters": 2 * HIDDEN * HIDDEN,
                              "stage3_max_reuse_distance": 0}})
    for step in range(2):
        x = torch.randn(MICRO, HIDDEN, generator=torch.Generator().manual_seed(step)).bfloat16()
        engine.backward(engine(x).float().pow(2).mean())
        engine.step()
    result = {"rank": engine.global_rank, "world": engine.world_size, "built": built, "before": before - base,
              "peak": status("VmHWM") - base, "engine": engine._session.memory(),
              "peak_live": engine._fetcher.peak_live_bytes, "params": LAYERS * HIDDEN * HIDDEN}
    engine.save_checkpoint(os.path.join(out, "ckpt"), tag="t")  # for consolidate's memory
    with GatheredParameters(model.layers[0].weight):
        if engine.global_rank == 0:
            torch.save(model.layers[0].weight.detach().float().clone(), os.path.join(out, "layer0.pt"))
    with open(os.path.join(out, f"rank{engine.global_rank}.json"), "w") as f:
        json.dump(result, f)
    print(f"MEMORY {json.dumps(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
