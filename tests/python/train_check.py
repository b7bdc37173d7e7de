"""A worker for test_zero_training.py, run under zlaunch: trains a small MLP
with zshard for 20 steps (gradient accumulation 2, clipping 0.5, AdamW) and,
on rank 0, compares the result with single-process torch.optim.AdamW on the
full batch. Prints "MATCH <relative error>" and exits 0 within 1e-5."""
import argparse
import sys

import torch

import zshard

STEPS, ACC, MICRO = 20, 2, 4


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 8))


def batch(data, step, acc, rank, world):
    start = ((step * ACC + acc) * world + rank) * MICRO
    return data[0][start:start + MICRO], data[1][start:start + MICRO]


def reference(data, world):
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    for step in range(STEPS):
        opt.zero_grad()
        for acc in range(ACC):
            for rank in range(world):
                x, y = batch(data, step, acc, rank, world)
                (torch.nn.functional.mse_loss(model(x), y) / (world * ACC)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
    return [p.detach() for p in model.parameters()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", type=int, default=2)
    args = parser.parse_args()
    topo = zshard.topology()
    world, rank = topo["world_size"], topo["rank"]
    gen = torch.Generator().manual_seed(1)
    rows = STEPS * ACC * world * MICRO
    data = (torch.randn(rows, 16, generator=gen), torch.randn(rows, 8, generator=gen))
    config = {"train_micro_batch_size_per_gpu": MICRO, "gradient_accumulation_steps": ACC,
              "gradient_clipping": 0.5, "zero_optimization": {"stage": args.stage, "reduce_bucket_size": 100},
              "optimizer": {"type": "AdamW", "params": {"lr": 1e-2, "weight_decay": 0.01}}}
    model = make_model()
    engine, _, _, _ = zshard.initialize(model=model, model_parameters=model.parameters(), config=config)
    for step in range(STEPS):
        for acc in range(ACC):
            x, y = batch(data, step, acc, rank, world)
            engine.backward(torch.nn.functional.mse_loss(engine(x), y))
            engine.step()
    assert engine.global_steps == STEPS, engine.global_steps
    if rank != 0:
        return 0
    ref = reference(data, world)
    worst = max(((p.detach() - r).abs().max() / r.abs().max()).item() for p, r in zip(model.parameters(), ref))
    print(f"MATCH {worst:.3g}" if worst < 1e-5 else f"MISMATCH {worst:.3g}")
    return 0 if worst < 1e-5 else 2


if __name__ == "__main__":
    sys.exit(main())
