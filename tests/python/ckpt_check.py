"""Worker for test_checkpoint.py, run under zlaunch on any number of ranks.

--phase train: trains --save-at steps, saves a checkpoint (tag
"global_step<N>"), then trains 10 more steps. --phase resume: starts from
other weights, loads the latest checkpoint and trains 10 steps. Both use
the same global batch per step whatever the world size (rank r takes its
rows), so a resumed run must retrace the uninterrupted one. Rank 0 writes
what it saw after the save point (weights, lrs, loss scales, an RNG draw)
to --record for the test to compare."""
import argparse
import os
import sys

import torch

import zshard

GLOBAL_BATCH, AFTER = 12, 10


class Fp32ComputeLinear(torch.nn.Linear):
    """fp16 weights, fp32 compute (torch 1.13 has no fp16 matmul on CPU)."""

    def forward(self, x):
        return torch.nn.functional.linear(x, self.weight.float(), self.bias.float())


def make_model(seed, hidden, layers=0, buffer=True):
    torch.manual_seed(seed)
    inner = [m for _ in range(layers) for m in (Fp32ComputeLinear(hidden, hidden), torch.nn.Tanh())]
    model = torch.nn.Sequential(Fp32ComputeLinear(16, hidden), torch.nn.Tanh(), *inner, Fp32ComputeLinear(hidden, 4))
    if buffer:
        model.register_buffer("calibration", torch.full((4,), float(seed)))  # a buffer travels too
    model.register_parameter("frozen", torch.nn.Parameter(torch.full((3,), float(seed) + 1), requires_grad=False))
    return model


def config(args):
    c = {"train_micro_batch_size_per_gpu": GLOBAL_BATCH // args.world, "gradient_clipping": 1.0,
         "steps_per_print": 1000,
         "optimizer": {"type": args.optimizer, "params": {"lr": 1e-2, "weight_decay": 0.01}},
         "scheduler": {"type": "WarmupDecayLR", "params": {"warmup_min_lr": 0, "warmup_max_lr": 1e-2,
                                                           "warmup_num_steps": 4, "total_num_steps": 40}},
         "zero_optimization": {"stage": args.stage, "reduce_bucket_size": args.bucket}}
    if args.precision == "fp16":
        c["fp16"] = {"enabled": True, "initial_scale_power": 24, "loss_scale_window": 3, "hysteresis": 2}
    return c


def batch(step, rank, world):
    gen = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(GLOBAL_BATCH, 16, generator=gen)
    y = torch.sin(x[:, :4] * 2)
    rows = GLOBAL_BATCH // world
    return x[rank * rows:(rank + 1) * rows], y[rank * rows:(rank + 1) * rows]


def train(engine, first, count, record):
    topo = zshard.topology()
    for step in range(first, first + count):
        x, y = batch(step, topo["rank"], topo["world_size"])
        engine.backward(torch.nn.functional.mse_loss(engine(x), y))
        engine.step()
        record["lrs"].append(engine.get_lr()[0])
        record["scales"].append(engine._session.loss_scale)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--phase", choices=["train", "resume"], required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--save-at", type=int, default=6)
    p.add_argument("--tag", default=None)
    p.add_argument("--stage", type=int, default=2)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--optimizer", default="AdamW")
    p.add_argument("--hidden", type=int, default=24)
    p.add_argument("--layers", type=int, default=0)
    p.add_argument("--bucket", type=int, default=200)
    p.add_argument("--no-buffer", action="store_true")
    p.add_argument("--no-optimizer-states", action="store_true")
    p.add_argument("--no-scheduler-state", action="store_true")
    args = p.parse_args()
    topo = zshard.topology()
    args.world = topo["world_size"]
    model = make_model(0 if args.phase == "train" else 99, args.hidden, args.layers, not args.no_buffer)
    engine, _, _, _ = zshard.initialize(model=model, config=config(args))
    record = {"lrs": [], "scales": []}
    if args.phase == "train":
        train(engine, 0, args.save_at, {"lrs": [], "scales": []})
        record["at_save"] = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
        engine.save_checkpoint(args.dir, client_state={"epoch": 3, "note": "resume me",
                                                       "tensor": torch.arange(3)})
        first = args.save_at
    else:
        path, client = engine.load_checkpoint(args.dir, tag=args.tag,
                                              load_optimizer_states=not args.no_optimizer_states,
                                              load_lr_scheduler_states=not args.no_scheduler_state)
        assert path is not None, "nothing loaded"
        assert client["epoch"] == 3 and client["note"] == "resume me", client
        assert torch.equal(client["tensor"], torch.arange(3)), client
        first = engine.global_steps
        assert torch.equal(model.calibration, torch.zeros(4)), model.calibration
        assert torch.equal(model.frozen, torch.ones(3)), model.frozen
        print(f"[resume] loaded {path} at global step {first} on {args.world} ranks", flush=True)
    if os.environ.get("CKPT_SAVE_AFTER_RESUME"):  # the crash test saves again (and dies in it)
        train(engine, first, AFTER, {"lrs": [], "scales": []})
        engine.save_checkpoint(args.dir)
    session = engine._session
    record["start"] = (session.loss_scale, session.lr, engine.skipped_steps, engine.global_steps)
    record["rng"] = torch.rand(3)
    record["skipped_before"] = engine.skipped_steps
    train(engine, first, AFTER, record)
    record["global_steps"] = engine.global_steps
    record["skipped"] = engine.skipped_steps
    record["final"] = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
    if topo["rank"] == 0:
        torch.save(record, args.record)
        print("RECORDED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
