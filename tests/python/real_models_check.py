"""A worker for test_real_models.py, run under zlaunch: what real users'
models do, against single-process torch. One case per run:

  match      a ConvNet with BatchNorm, a frozen layer and two heads; each rank
             takes a different head on different steps and weighs its loss
             by (1 + rank). Trains with zshard (--stage, --clip) and, on rank
             0, compares with torch.optim.AdamW on the same micro batches,
             and get_global_grad_norm() with clip_grad_norm_'s total norm.
  bf16_bn    the same ConvNet in bf16: trains, the loss falls, eval() works.
  unused     ignore_unused_parameters false: the rank that skips a head
             fails naming it.
  behind     changes behind the engine's back after initialize().
  handover   a gradient is gone from .grad as soon as backward produced it.
Prints "MATCH <err>" / "OK ..." on success (exit 0), else exits non-zero.
"""
import argparse
import sys
import warnings

import torch
import torch.nn.functional as F

import zshard

STEPS, ACC, MICRO = 12, 2, 4


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1, bias=False)  # BatchNorm follows
        self.bn = torch.nn.BatchNorm2d(6)
        self.frozen = torch.nn.Linear(6, 12)
        self.frozen.requires_grad_(False)
        self.head_a = torch.nn.Linear(12, 4)
        self.head_b = torch.nn.Linear(12, 4)

    def forward(self, x, use_b):
        h = F.relu(self.bn(self.conv(x))).mean((2, 3))
        h = torch.tanh(self.frozen(h))
        return (self.head_b if use_b else self.head_a)(h)


def make_model():
    torch.manual_seed(0)
    return Net()


def uses_b(rank, step, acc):
    return (rank + step + acc) % 3 == 0


def data(world):
    gen = torch.Generator().manual_seed(1)
    rows = STEPS * ACC * world * MICRO
    return torch.randn(rows, 3, 5, 5, generator=gen), torch.randn(rows, 4, generator=gen)


def batch(d, step, acc, rank, world):
    start = ((step * ACC + acc) * world + rank) * MICRO
    return d[0][start:start + MICRO], d[1][start:start + MICRO]


def loss_of(out, y, rank):
    return F.mse_loss(out.float(), y) * (1 + rank)


def config(stage, clip, **extra):
    c = {"train_micro_batch_size_per_gpu": MICRO, "gradient_accumulation_steps": ACC,
         "zero_optimization": {"stage": stage, "reduce_bucket_size": 50, "overlap_comm": True},
         "optimizer": {"type": "AdamW", "params": {"lr": 1e-2, "weight_decay": 0.01}}}
    if clip:
        c["gradient_clipping"] = clip
    c.update(extra)
    return c


def groups(model, client=None):
    """HuggingFace's usual split: no weight decay for biases and norms;
    the decayed group names its own decay, the other one none, and a
    learning rate (and, for Adam, betas and eps) of its own."""
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and ("bias" in n or "bn." in n)]
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not ("bias" in n or "bn." in n)]
    own = {"weight_decay": 0.0, "lr": 4e-3}
    if client != "sgd":
        own.update(betas=(0.8, 0.99), eps=1e-6)
    return [{"params": decay, "weight_decay": 0.1}, dict(own, params=no_decay)]


# Client optimizers (initialize(optimizer=...)), built the same way for
# zshard and for the reference.
CLIENTS = {
    "adamw": lambda params: torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.99), eps=1e-7, weight_decay=0.05),
    "adam": lambda params: torch.optim.Adam(params, lr=1e-2, weight_decay=0.01),  # L2 decay
    "sgd": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
}


def reference(d, world, clip, grouped=False, client=None):
    model = make_model()
    trainable = [p for p in model.parameters() if p.requires_grad]
    params = groups(model, client) if grouped else trainable
    if client:
        opt = CLIENTS[client](params)
    else:
        opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    norm = None
    for step in range(STEPS):
        opt.zero_grad()
        for acc in range(ACC):
            for rank in range(world):
                x, y = batch(d, step, acc, rank, world)
                (loss_of(model(x, uses_b(rank, step, acc)), y, rank) / (world * ACC)).backward()
        for p in trainable:  # a head no rank used: a zero gradient, as in DeepSpeed's flat buffers
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        norm = torch.nn.utils.clip_grad_norm_(trainable, clip if clip else float("inf")).item()
        opt.step()
    return model, norm


def case_match(args, rank, world):
    d = data(world)
    model = make_model()
    frozen_before = model.frozen.weight.detach().clone()
    params = groups(model, args.client) if args.groups else model.parameters()
    cfg = config(args.stage, args.clip)
    client = None
    if args.client:
        client = CLIENTS[args.client](params)
        del cfg["optimizer"]
    engine, _, _, _ = zshard.initialize(model=model, model_parameters=params, optimizer=client, config=cfg)
    for step in range(STEPS):
        for acc in range(ACC):
            x, y = batch(d, step, acc, rank, world)
            engine.backward(loss_of(engine(x, uses_b(rank, step, acc)), y, rank))
            engine.step()
    if rank != 0:
        return 0
    ref, ref_norm = reference(d, world, args.clip, args.groups, args.client)
    worst = 0.0
    for (name, p), r in zip(model.named_parameters(), ref.parameters()):
        if p.requires_grad:
            worst = max(worst, ((p.detach() - r).abs().max() / r.abs().max()).item())
    norm_err = abs(engine.get_global_grad_norm() - ref_norm) / ref_norm
    assert torch.equal(model.frozen.weight, frozen_before), "a frozen parameter changed"
    ok = worst < 1e-5 and norm_err < 1e-5
    print(f"{'MATCH' if ok else 'MISMATCH'} {worst:.3g} grad_norm {engine.get_global_grad_norm():.6g} "
          f"vs torch {ref_norm:.6g}")
    return 0 if ok else 2


def case_bf16_bn(args, rank, world):
    d = data(world)
    model = make_model()
    cfg = config(args.stage, 1.0, bf16={"enabled": True})
    cfg["optimizer"]["params"]["lr"] = 5e-2
    engine, _, _, _ = zshard.initialize(model=model, config=cfg)
    assert model.bn.running_mean.dtype == torch.bfloat16 and model.frozen.weight.dtype == torch.bfloat16
    losses = []
    for step in range(STEPS):
        for acc in range(ACC):
            x, y = batch(d, 0, acc, rank, world)  # the same batches: the loss must fall
            loss = loss_of(engine(x.bfloat16(), False), y, rank)
            engine.backward(loss)
            engine.step()
            losses.append(loss.item())
    engine.eval()
    with torch.no_grad():
        out = engine(d[0][:MICRO].bfloat16(), True)
    assert out.dtype == torch.bfloat16 and not model.training
    first, last = sum(losses[:ACC]), sum(losses[-ACC:])
    print(f"OK bf16 loss {first:.4f} -> {last:.4f}")
    return 0 if last < 0.9 * first else 2


def case_unused(args, rank, world):
    model = make_model()
    cfg = config(args.stage, 0, zero_optimization={"stage": args.stage, "ignore_unused_parameters": False})
    engine, _, _, _ = zshard.initialize(model=model, config=cfg)
    x, y = torch.randn(MICRO, 3, 5, 5), torch.randn(MICRO, 4)
    try:
        engine.backward(loss_of(engine(x, rank == 1), y, rank))  # rank 1 skips head_a
        engine.step()
    except zshard.ZshardError as e:
        print(f"ERROR {e}")
        return 3
    print("OK no error")
    return 0


def expect_error(what, fn, text):
    try:
        fn()
    except zshard.ZshardError as e:
        assert text in str(e), f"{what}: {e}"
        return
    raise AssertionError(f"{what}: no error")


def case_behind(args, rank, world):
    d = data(world)
    model = make_model()
    cfg = config(args.stage, 0)
    engine, _, _, _ = zshard.initialize(model=model, config=cfg)
    x, y = batch(d, 0, 0, rank, world)
    # 1. A state dict loaded into the model reaches the master weights on every rank.
    other = make_model()
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(-0.5)
    model.load_state_dict(other.state_dict())
    assert torch.equal(model.head_a.weight, other.head_a.weight)
    engine.backward(loss_of(engine(x, False), y, rank) * 0)  # zero gradients: AdamW leaves weights ~put
    engine.step()
    engine.backward(loss_of(engine(x, False), y, rank) * 0)
    engine.step()
    moved = (model.head_a.weight - other.head_a.weight).abs().max().item()
    assert moved < 1e-3, f"the loaded weights were undone by the step: moved {moved}"
    # 2. zero_grad() in a window forgets its micro steps (with a warning).
    engine.backward(loss_of(engine(x, False), y, rank))
    engine.step()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine.zero_grad()
    assert rank != 0 or any("discarded the gradients of 1 micro step" in str(w.message) for w in caught), caught
    before = engine.global_steps
    engine.backward(loss_of(engine(x, False), y, rank))
    engine.step()
    assert engine.global_steps == before, "the window did not restart after zero_grad()"
    engine.backward(loss_of(engine(x, False), y, rank))
    engine.step()
    assert engine.global_steps == before + 1
    # 3. A parameter added after initialize(), and a model cast behind the engine's back.
    model.extra = torch.nn.Linear(2, 2)
    expect_error("added", lambda: engine(x, False), "parameter extra.weight: added to the model after initialize()")
    del model.extra
    model.double()
    expect_error("double", lambda: engine(x.double(), False), "model.to(), .double(), .half()")
    print(f"OK behind rank {rank}")
    return 0


def case_handover(args, rank, world):
    """While backward reaches the first layer, the last layer's gradient has
    already gone to the engine: autograd holds no full set of gradients."""
    torch.manual_seed(0)
    first, last = torch.nn.Linear(8, 8), torch.nn.Linear(8, 2)
    model = torch.nn.Sequential(first, torch.nn.Tanh(), last)
    engine, _, _, _ = zshard.initialize(model=model, config=config(args.stage, 0))
    seen = []
    h = first(torch.randn(4, 8))
    h.register_hook(lambda g: seen.append(last.weight.grad is None and last.bias.grad is None))
    engine.backward(last(torch.tanh(h)).pow(2).mean())
    engine.step()
    assert seen == [True], "the last layer's .grad was still held when backward reached the first layer"
    assert all(p.grad is None for p in model.parameters())
    print(f"OK handover rank {rank}")
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--stage", type=int, default=2)
    parser.add_argument("--clip", type=float, default=0.0)
    parser.add_argument("--groups", action="store_true", help="parameter groups with their own lr and weight decay (and Adam's betas, eps)")
    parser.add_argument("--client", choices=sorted(CLIENTS), help="a client torch optimizer")
    args = parser.parse_args()
    topo = zshard.topology()
    cases = {"match": case_match, "bf16_bn": case_bf16_bn, "unused": case_unused, "behind": case_behind,
             "handover": case_handover}
    return cases[args.case](args, topo["rank"], topo["world_size"])


if __name__ == "__main__":
    sys.exit(main())
