"""A worker for test_engine_surface.py, run under zlaunch: DeepSpeed's engine
accessors and step/backward arguments, one case per run; prints "OK <case>".

  accessors       fp16_enabled() ... steps_per_print(), was_step_applied(),
                  global_samples, micro_steps, dp_world_size, cur_scale,
                  get_mom() under OneCycle's momentum cycling (DeepSpeed's
                  formula, written out here)
  sum_over_gas    backward(loss, scale_wrt_gas=False) sums the micro steps'
                  gradients: equal to single-process SGD on the summed ones
  batch_and_save  set_train_batch_size() changes the window; save_16bit_model()
                  writes a state dict that loads into a fresh model
  client_schedule a client torch AdamW + HuggingFace-style LambdaLR warmup
                  (object and callable) drive the engine's lr like torch's;
                  writing optimizer.param_groups[i]["lr"] changes the next step
  stage0_grads    stage 0: p.grad after the boundary's backward is the mean
                  gradient, and changing it in place changes the step
  lr_kwargs       step(lr_kwargs=) reaches a client scheduler's step(); the
                  config's scheduler refuses them
  no_sync         no_sync() at stage 1 (accumulating micro steps; a boundary
                  step inside refused) matches torch; stage 2 refuses it
"""
import sys

import torch

import zshard

ACC = 2


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def one_cycle_beta1(it, lo=0.85, hi=0.95, first=4):
    """DeepSpeed's OneCycle momentum at last_batch_iteration `it`."""
    if it < 0:
        return lo
    batch = it + 1
    x = 1 + batch / (2 * first) - int(1 + batch / (2 * first))
    scale = x / 0.5 if x <= 0.5 else (x - 1) / (0.5 - 1)
    return hi - (hi - lo) * scale


def accessors(rank, world):
    engine, _, _, _ = zshard.initialize(model=model(), config={
        "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": ACC, "gradient_clipping": 1.0,
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}},
        "scheduler": {"type": "OneCycle", "params": {"cycle_min_lr": 1e-4, "cycle_max_lr": 1e-3,
                                                     "cycle_first_step_size": 4, "cycle_min_mom": 0.85,
                                                     "cycle_max_mom": 0.95}},
        "zero_optimization": {"stage": 2}})
    assert not engine.fp16_enabled() and not engine.bfloat16_enabled()
    assert engine.zero_optimization_stage() == 2 and engine.gradient_clipping() == 1.0
    assert engine.steps_per_print() == 10 and engine.dp_world_size == world and engine.cur_scale == 1.0
    x = torch.ones(2, 4)
    for micro in range(6):
        assert abs(engine.get_mom()[0][0] - one_cycle_beta1(engine.global_steps - 1)) < 1e-12, engine.get_mom()
        assert engine.get_mom()[0][1] == 0.99
        engine.backward(engine(x).pow(2).sum())
        engine.step()
        assert engine.was_step_applied() == (micro % ACC == ACC - 1), micro
        assert engine.micro_steps == micro + 1
        assert engine.global_samples == engine.global_steps * 2 * ACC * world
    assert engine.global_steps == 3


def sgd_engine(stage, lr, seed, world):
    """A model, its SGD engine with gradient accumulation, and 3 steps' data."""
    net = model()
    engine, _, _, _ = zshard.initialize(model=net, config={
        "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": ACC,
        "optimizer": {"type": "SGD", "params": {"lr": lr}}, "zero_optimization": {"stage": stage}})
    gen = torch.Generator().manual_seed(seed)
    return net, engine, [torch.randn(2, 4, generator=gen) for _ in range(3 * ACC * world)]


def sgd_reference(data, world, lr, divisor):
    """Single-process torch SGD over 3 steps of ACC micro steps, each
    micro step's loss on every rank's batch divided by `divisor`."""
    ref = model()
    opt = torch.optim.SGD(ref.parameters(), lr=lr)
    for step in range(3):
        opt.zero_grad()
        for t in range(step * ACC, (step + 1) * ACC):
            for r in range(world):
                (ref(data[t * world + r]).pow(2).mean() / divisor).backward()
        opt.step()
    return ref


def max_error(a, b):
    return max(((p - q).abs().max() / q.abs().max()).item() for p, q in zip(a.parameters(), b.parameters()))


def sum_over_gas(rank, world):
    net, engine, data = sgd_engine(2, 0.05, 3, world)
    for t in range(3 * ACC):
        engine.backward(engine(data[t * world + rank]).pow(2).mean(), scale_wrt_gas=False)
        engine.step()
    if rank != 0:
        return
    ref = sgd_reference(data, world, 0.05, world)  # summed over micro steps, averaged over ranks
    worst = max_error(net, ref)
    assert worst < 1e-5, worst


def batch_and_save(rank, world):
    import os
    net = model()
    engine, _, _, _ = zshard.initialize(model=net, config={
        "train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.05}}})
    engine.set_train_batch_size(2 * world * 3)
    assert engine.gradient_accumulation_steps() == 3 and engine.train_batch_size() == 6 * world
    x = torch.ones(2, 4)
    for _ in range(6):
        engine.backward(engine(x).sum())
        engine.step()
    assert engine.global_steps == 2, engine.global_steps
    engine.backward(engine(x).sum())
    engine.step()
    for size, text in ((2 * world, "in the middle of gradient accumulation"),  # one micro step in
                       (3, "expected a multiple of micro batch x world size")):
        try:
            engine.set_train_batch_size(size)
        except zshard.ZshardError as e:
            assert text in str(e), e
        else:
            raise AssertionError(f"set_train_batch_size({size}) was accepted")
    out = f"/tmp/zshard-save16-{os.environ.get('ZSHARD_RUN_ID', 'single')}"
    assert engine.save_16bit_model(out, "model.bin")
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    fresh.load_state_dict(torch.load(os.path.join(out, "model.bin")))
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), net.parameters()))


def _warmup(step):
    return min(1.0, (step + 1) / 4)


def client_schedule(rank, world):
    gen = torch.Generator().manual_seed(5)
    data = [torch.randn(2, 4, generator=gen) for _ in range(8 * world)]
    net = model()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.0)
    callable_scheduler = rank % 2 == 1  # one rank passes an object, the other a callable: same schedule
    sched = (lambda o: torch.optim.lr_scheduler.LambdaLR(o, _warmup)) if callable_scheduler else \
        torch.optim.lr_scheduler.LambdaLR(opt, _warmup)
    engine, optimizer, _, scheduler = zshard.initialize(model=net, optimizer=opt, lr_scheduler=sched, config={
        "train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 2}})
    assert engine.optimizer is optimizer and engine.lr_scheduler is scheduler
    lrs = []
    for t in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        engine.backward(engine(data[t * world + rank]).pow(2).mean())
        engine.step()
    assert lrs == [1e-2 * _warmup(t) for t in range(8)], lrs
    assert engine.get_lr() == [scheduler.get_last_lr()[0]]
    if rank == 0:
        ref = model()
        ropt = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.0)
        rsched = torch.optim.lr_scheduler.LambdaLR(ropt, _warmup)
        for t in range(8):
            ropt.zero_grad()
            for r in range(world):
                (ref(data[t * world + r]).pow(2).mean() / world).backward()
            ropt.step()
            rsched.step()
        worst = max_error(net, ref)
        assert worst < 1e-5, worst
    # A script writing the lr itself: 0 freezes the weights for the next step.
    before = [p.detach().clone() for p in net.parameters()]
    for g in optimizer.param_groups:
        g["lr"] = 0.0
    engine.backward(engine(data[rank]).pow(2).mean())
    engine.step()
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def no_sync(rank, world):
    """Micro steps inside no_sync() at stage 1 accumulate without talking;
    the boundary step inside is refused (it needs every rank's gradients)
    and goes through once outside; stage 2 refuses no_sync as DeepSpeed."""
    net, engine, data = sgd_engine(1, 0.05, 4, world)
    for t in range(3 * ACC):
        boundary = engine.is_gradient_accumulation_boundary()
        with engine.no_sync():
            engine.backward(engine(data[t * world + rank]).pow(2).mean())
            if boundary:
                try:
                    engine.step()
                    raise AssertionError("a boundary step inside no_sync() was accepted")
                except zshard.ZshardError as e:
                    assert "inside no_sync()" in str(e), e
            else:
                engine.step()
        if boundary:
            engine.step()
    assert engine.global_steps == 3, engine.global_steps
    try:
        with zshard.initialize(model=model(), config={
                "train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.05}},
                "zero_optimization": {"stage": 2}})[0].no_sync():
            raise AssertionError("no_sync() at stage 2 was accepted")
    except zshard.ZshardError as e:
        assert "incompatible with ZeRO stage 2" in str(e), e
    if rank != 0:
        return
    ref = sgd_reference(data, world, 0.05, world * ACC)
    worst = max_error(net, ref)
    assert worst < 1e-5, worst


def stage0_grads(rank, world):
    """Stage 0, as DeepSpeed: after the boundary's backward p.grad holds the
    gradient averaged over ranks and micro steps (None before the boundary);
    the script's own in-place change of it (halving) reaches the step."""
    net, engine, data = sgd_engine(0, 0.1, 6, world)
    ref = model()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for t in range(3 * ACC):
        boundary = engine.is_gradient_accumulation_boundary()
        engine.backward(engine(data[t * world + rank]).pow(2).mean())
        if t % ACC == 0:
            opt.zero_grad()
        for r in range(world):
            (ref(data[t * world + r]).pow(2).mean() / (world * ACC)).backward()
        if not boundary:
            assert all(p.grad is None for p in net.parameters())
            engine.step()
            continue
        for p, q in zip(net.parameters(), ref.parameters()):
            assert p.grad is not None and torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-7), (p.grad, q.grad)
            p.grad.mul_(0.5)
            q.grad.mul_(0.5)
        engine.step()
        opt.step()
        assert all(p.grad is None for p in net.parameters())
    worst = max_error(net, ref)
    assert worst < 1e-5, worst


class _Counting:
    """A client scheduler whose step() takes an argument (DeepSpeed passes
    engine.step(lr_kwargs=...) on to it)."""

    def __init__(self, optimizer):
        self.optimizer, self.steps = optimizer, 0

    def step(self, increment=1):
        self.steps += increment

    def state_dict(self):
        return {"steps": self.steps}


def lr_kwargs(rank, world):
    engine, _, _, scheduler = zshard.initialize(model=model(), lr_scheduler=_Counting, config={
        "train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.05}}})
    engine.backward(engine(torch.ones(2, 4)).sum())
    engine.step(lr_kwargs={"increment": 3})
    assert scheduler.steps == 3, scheduler.steps
    configured, _, _, _ = zshard.initialize(model=model(), config={
        "train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.05}},
        "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 2}}})
    try:
        configured.step(lr_kwargs={"increment": 3})
        raise AssertionError("lr_kwargs for the config's scheduler were accepted")
    except zshard.ConfigError as e:
        assert "the config's scheduler takes no step arguments" in str(e), e


if __name__ == "__main__":
    topo = zshard.topology()
    globals()[sys.argv[1]](topo["rank"], topo["world_size"])
    print(f"OK {sys.argv[1]}")
