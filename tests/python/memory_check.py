"""Worker for test_memory.py: one rank's resident memory (VmRSS/VmHWM of
/proc/self/status) through a ZeRO run of an 8.4M-parameter fp32 MLP:
the baseline (Python, torch, zshard and torch.distributed up, torch's
kernels warmed on a tiny model), the peak during initialize(), and the peak
over 4 training steps (VmHWM reset between them through
/proc/self/clear_refs). Prints `MEMORY <json>`.

    memory_check.py STAGE
"""
import json
import sys

import torch

import zshard
from proc_status import reset_peak, status

HIDDEN, LAYERS = 1024, 8


stage = int(sys.argv[1])
zshard.init_distributed()
torch.manual_seed(0)
x = torch.randn(8, HIDDEN)
warm = torch.nn.Linear(HIDDEN, HIDDEN)
warm(x).sum().backward()  # torch's lazily made threads and buffers belong to the baseline
del warm
reset_peak()
baseline = status("VmRSS")
model = torch.nn.Sequential(*[torch.nn.Linear(HIDDEN, HIDDEN) for _ in range(LAYERS)])
config = {"train_micro_batch_size_per_gpu": 8, "optimizer": {"type": "AdamW", "params": {"lr": 1e-4}},
          "zero_optimization": {"stage": stage, "reduce_bucket_size": 1_000_000}}
engine, _, _, _ = zshard.initialize(model=model, model_parameters=model.parameters(), config=config)
del model
init_peak = status("VmHWM")
reset_peak()
for _ in range(4):
    engine.backward(engine(x).square().mean())
    engine.step()
train_peak = status("VmHWM")
numel = sum(p.numel() for p in engine.module.parameters())
print("MEMORY " + json.dumps({"rank": engine.global_rank, "world": engine.world_size, "numel": numel,
                              "baseline": baseline, "init_peak": init_peak, "train_peak": train_peak,
                              "engine": engine._session.memory()}), flush=True)
