"""A worker for test_faults.py: training with the config's save_on_signal
and resume "latest". Each rank's part of a step's batch depends only on the
step, so a run resumed on another rank count continues the same training;
rank 0 records the rank count of every step it ran (worlds.txt) and at the
end compares the fp32 weights with single-process torch AdamW over those
rank counts. argv: OUT_DIR STEPS. Prints "STEP n" per step, then
"PREEMPT MATCH <worst>"."""
import os
import sys
import time

import torch

import zshard

BATCH, LR = 12, 1e-2


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


def batch(step, rank, world):
    g = torch.Generator().manual_seed(step)
    x, y = torch.randn(BATCH, 6, generator=g), torch.randn(BATCH, 2, generator=g)
    rows = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    return x[rows], y[rows]


def reference(worlds):
    model = build()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    for step, world in enumerate(worlds):
        opt.zero_grad()
        for r in range(world):
            x, y = batch(step, r, world)
            (torch.nn.functional.mse_loss(model(x), y) / world).backward()
        opt.step()
    return [p.detach() for p in model.parameters()]


def main(out, steps):
    model = build()
    engine, _, _, _ = zshard.initialize(model=model, model_parameters=model.parameters(), config={
        "train_micro_batch_size_per_gpu": 1, "optimizer": {"type": "AdamW", "params": {"lr": LR, "weight_decay": 0.01}},
        "zero_optimization": {"stage": 2},
        "zshard": {"checkpoint": {"dir": os.path.join(out, "ckpt"), "save_on_signal": True, "resume": "latest",
                                  "keep_last": 2}}})
    rank, world = engine.global_rank, engine.world_size
    record = os.path.join(out, "worlds.txt")
    while engine.global_steps < steps:
        x, y = batch(engine.global_steps, rank, world)
        engine.backward(torch.nn.functional.mse_loss(engine(x), y))
        if rank == 0:
            with open(record, "a") as f:
                f.write(f"{world}\n")
        engine.step()
        if rank == 0:
            print(f"STEP {engine.global_steps}", flush=True)
        time.sleep(0.1)
    masters = [engine.full_param_state(p, "master") for p in model.parameters()]
    if rank != 0:
        return 0
    worlds = [int(w) for w in open(record).read().split()]
    assert len(worlds) == steps, f"{len(worlds)} steps recorded, {steps} trained"
    ref = reference(worlds)
    worst = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(masters, ref))
    print(f"PREEMPT {'MATCH' if worst < 1e-5 else 'MISMATCH'} {worst:.3g} worlds {worlds}", flush=True)
    return 0 if worst < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
