"""What the DeepSpeed-API clients share: their batches (a function of step,
micro step and rank only), the single-process torch reference of a recipe
(the same updates on the mean gradient over ranks and micro steps, as
DeepSpeed averages them) and the verdict line the test reads."""
import torch


def batch(step, micro, rank, make):
    """This rank's batch of one micro step: make(generator), seeded apart."""
    return make(torch.Generator().manual_seed(100003 * step + 1009 * micro + rank))


def torch_reference(model, optimizer, steps, world, gas, loss_of, scheduler=None, clip=None):
    """Trains `model` with `optimizer` on every rank's batches in one
    process: loss_of(model, step, micro, rank) of each, divided by
    world x gas, then clip (max norm) and step, then the scheduler."""
    for step in range(steps):
        optimizer.zero_grad()
        for micro in range(gas):
            for rank in range(world):
                (loss_of(model, step, micro, rank) / (world * gas)).backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return model


def max_relative_error(models, references):
    """The worst per-parameter max |a - b| / max |b| over trainable parameters."""
    worst = 0.0
    for model, ref in zip(models, references):
        for p, q in zip(model.parameters(), ref.parameters()):
            if p.requires_grad:
                worst = max(worst, ((p.detach().float() - q).abs().max() / q.abs().max()).item())
    return worst


def report(name, worst, steps, tolerance=1e-5):
    """The line test_deepspeed_api.py checks: MATCH under `tolerance`."""
    print(f"{name} {'MATCH' if worst < tolerance else 'MISMATCH'} {worst:.3g} after {steps} steps", flush=True)
    return 0 if worst < tolerance else 1
