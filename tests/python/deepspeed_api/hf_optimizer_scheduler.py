"""DeepSpeed client as HuggingFace-style scripts write it: a torch AdamW
built by the script over no-decay groups, and a linear warmup-then-decay
LambdaLR (transformers' get_linear_schedule_with_warmup) on it, both given
to deepspeed.initialize(optimizer=, lr_scheduler=); the loop reads the
scheduler's get_last_lr() and the optimizer's param_groups, ZeRO-1."""
import sys

import torch

import deepspeed
from recipe import batch, max_relative_error, report, torch_reference

STEPS, WARMUP, MICRO = 12, 3, 4
CONFIG = {"train_micro_batch_size_per_gpu": MICRO, "zero_optimization": {"stage": 1}}


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.LayerNorm(16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 3))


def linear_schedule_with_warmup(optimizer, warmup, total):
    def factor(step):
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def optimizer_for(model):
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
                             lr=5e-3, betas=(0.9, 0.98), eps=1e-7)


def sample(g):
    return torch.randn(MICRO, 6, generator=g), torch.randint(0, 3, (MICRO,), generator=g)


def loss_of(model, step, micro, rank):
    x, y = batch(step, micro, rank, sample)
    return torch.nn.functional.cross_entropy(model(x), y)


def main():
    model = build()
    opt = optimizer_for(model)
    sched = linear_schedule_with_warmup(opt, WARMUP, STEPS)
    engine, optimizer, _, scheduler = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=sched,
                                                           config=CONFIG)
    assert scheduler is sched and engine.lr_scheduler is sched
    rank, world = engine.global_rank, engine.world_size
    seen = []
    for step in range(STEPS):
        seen.append(scheduler.get_last_lr()[0])
        assert optimizer.param_groups[0]["lr"] == seen[-1]
        engine.backward(loss_of(engine, step, 0, rank))
        engine.step()
    if rank != 0:
        return 0
    ref = build()
    ref_opt = optimizer_for(ref)
    ref_sched = linear_schedule_with_warmup(ref_opt, WARMUP, STEPS)
    ref_lrs = []
    for step in range(STEPS):  # the reference's schedule, step by step
        ref_lrs.append(ref_sched.get_last_lr()[0])
        torch_reference(ref, ref_opt, 1, world, 1, lambda m, s, a, r: loss_of(m, step, a, r), ref_sched)
    assert seen == ref_lrs, (seen, ref_lrs)
    return report("hf_optimizer_scheduler", max_relative_error([model], [ref]), engine.global_steps)


if __name__ == "__main__":
    sys.exit(main())
