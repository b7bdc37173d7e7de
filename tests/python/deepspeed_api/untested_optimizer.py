"""DeepSpeed client with a torch optimizer zshard has no fused twin of
(Adagrad or RMSprop with momentum), over two parameter groups with their
own lr, driven by a LambdaLR, with "zero_allow_untested_optimizer": true
and gradient clipping: the client's class steps each rank's fp32 shard, as
DeepSpeed runs it. Checkpointed mid-run and resumed (same ranks), the run
still matches the reference; resuming its optimizer state on another number
of ranks is refused, naming why. argv: adagrad|rmsprop STAGE CKPT_DIR, or
elsewhere adagrad|rmsprop STAGE CKPT_DIR on another number of ranks."""
import argparse
import sys

import torch

import deepspeed
from recipe import batch, max_relative_error, report, torch_reference

STEPS, HALF, MICRO = 12, 6, 4
CLIENTS = {"adagrad": lambda groups: torch.optim.Adagrad(groups, lr=0.05, lr_decay=0.01, weight_decay=0.01),
           "rmsprop": lambda groups: torch.optim.RMSprop(groups, lr=0.01, alpha=0.9, momentum=0.5, centered=True)}


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 2))


def groups(model):
    return [{"params": [model[0].weight, model[2].weight]},
            {"params": [model[0].bias, model[2].bias], "lr": 0.02}]


def schedule(optimizer):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + 0.1 * step))


def sample(g):
    return torch.randn(MICRO, 6, generator=g), torch.randn(MICRO, 2, generator=g)


def loss_of(model, step, micro, rank):
    x, y = batch(step, micro, rank, sample)
    return torch.nn.functional.mse_loss(model(x), y)


def config(stage, allow=True):
    return {"train_micro_batch_size_per_gpu": MICRO, "gradient_clipping": 0.5, "zero_allow_untested_optimizer": allow,
            "zero_optimization": {"stage": stage, "reduce_bucket_size": 40}}


def main(kind, stage, ckpt):
    model = build()
    try:
        deepspeed.initialize(model=build(), optimizer=CLIENTS[kind](groups(build())), config=config(stage, False))
        raise AssertionError("an untested optimizer ran without zero_allow_untested_optimizer")
    except Exception as e:  # noqa: BLE001 (zshard.ConfigError; DeepSpeed's scripts name no error class)
        assert "zero_allow_untested_optimizer" in str(e), e
    opt = CLIENTS[kind](groups(model))
    engine, optimizer, _, scheduler = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=schedule,
                                                           config=config(stage))
    rank, world = engine.global_rank, engine.world_size
    for step in range(STEPS):
        if step == HALF:  # save, wreck the weights, resume: the run goes on as if never stopped
            engine.save_checkpoint(ckpt)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)
            engine.load_checkpoint(ckpt)
        engine.backward(loss_of(engine, step, 0, rank))
        engine.step()
    assert [g["lr"] for g in optimizer.param_groups] == scheduler.get_last_lr()
    if rank != 0:
        return 0
    ref = build()
    ref_opt = CLIENTS[kind](groups(ref))
    torch_reference(ref, ref_opt, STEPS, world, 1, loss_of, schedule(ref_opt), clip=0.5)
    return report(f"untested_optimizer {kind}", max_relative_error([model], [ref]), engine.global_steps)


def resume_elsewhere(kind, stage, ckpt):
    """On another number of ranks the per-rank optimizer state cannot be
    resumed: refused before anything changes; the weights alone load."""
    model = build()
    opt = CLIENTS[kind](groups(model))
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=schedule, config=config(stage))
    before = [p.detach().clone() for p in model.parameters()]
    try:
        engine.load_checkpoint(ckpt)
        raise AssertionError("per-rank optimizer state resumed on another number of ranks")
    except Exception as e:  # noqa: BLE001
        assert "state is kept per rank and was saved by 2 ranks" in str(e), e
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    path, _ = engine.load_checkpoint(ckpt, load_optimizer_states=False)
    assert path and not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    print("RESUME ELSEWHERE REFUSED", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--local_rank", type=int, default=-1)  # zlaunch gives it, as DeepSpeed's launcher
    parser.add_argument("words", nargs="+")
    words = parser.parse_args().words
    what = resume_elsewhere if words[0] == "elsewhere" else main
    sys.exit(what(*words[-3:-2], int(words[-2]), words[-1]))
