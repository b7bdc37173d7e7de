"""DeepSpeed client from the getting-started page: argparse with
--local_rank (zlaunch passes it, as DeepSpeed's launcher does) and
deepspeed.add_config_arguments, deepspeed.initialize(args=args, ...) with
--deepspeed_config on the command line, the device chosen from
args.local_rank the way GPU scripts do (CPU here); Lamb at ZeRO-1."""
import argparse
import os
import sys

import torch

import deepspeed
from recipe import batch, max_relative_error, report, torch_reference

STEPS, MICRO = 10, 3


def parse():
    parser = argparse.ArgumentParser(description="local_rank client")
    parser.add_argument("--local_rank", type=int, default=-1, help="local rank passed from distributed launcher")
    parser = deepspeed.add_config_arguments(parser)
    return parser.parse_args()


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))


def sample(g):
    return torch.randn(MICRO, 4, generator=g)


def loss_of(model, step, micro, rank):
    x = batch(step, micro, rank, sample)
    return (model(x) - x.flip(1)).pow(2).mean()


def main():
    args = parse()
    assert args.local_rank == int(os.environ["LOCAL_RANK"]), (args.local_rank, os.environ["LOCAL_RANK"])
    assert args.deepspeed and args.deepspeed_config
    device = torch.device("cuda", args.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    model = build().to(device)
    engine, _, _, _ = deepspeed.initialize(args=args, model=model, model_parameters=model.parameters())
    assert engine.local_rank == args.local_rank
    for step in range(STEPS):
        engine.backward(loss_of(engine, step, 0, engine.global_rank))
        engine.step()
    if engine.global_rank != 0:
        return 0
    return report("local_rank_args", lamb_error(model, engine.world_size), engine.global_steps)


def lamb_error(model, world):
    """Lamb has no torch twin: the reference is Lamb written out in float64
    (DeepSpeed's formula: Adam's update plus decay, times the clamped
    trust ratio ||w|| / ||update||)."""
    ref = build().double()
    m = [torch.zeros_like(p) for p in ref.parameters()]
    v = [torch.zeros_like(p) for p in ref.parameters()]
    b1, b2, eps, lr, wd = 0.9, 0.999, 1e-8, 1e-2, 0.01
    for step in range(STEPS):
        for p in ref.parameters():
            p.grad = None
        for r in range(world):
            (loss_of(lambda x: ref(x.double()), step, 0, r) / world).backward()
        with torch.no_grad():
            for p, mi, vi in zip(ref.parameters(), m, v):
                mi.mul_(b1).add_(p.grad, alpha=1 - b1)
                vi.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                update = (mi / (1 - b1 ** (step + 1))) / ((vi / (1 - b2 ** (step + 1))).sqrt() + eps) + wd * p
                w_norm, u_norm = p.norm().item(), update.norm().item()
                ratio = min(10.0, max(0.01, w_norm / u_norm)) if w_norm > 0 and u_norm > 0 else 1.0
                p.sub_(lr * ratio * update)
    return max_relative_error([model], [ref])


if __name__ == "__main__":
    sys.exit(main())
