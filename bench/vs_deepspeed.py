"""Worker of bench/vs_deepspeed.sh: one rank of one case, run the same way
by zshard and by the real DeepSpeed (--impl): the same model, seed, data
and ds.json, started with torch.distributed's env:// variables (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT), which both read.

Prints on every rank one line
    RESULT {"impl", "rank", "forward_ms", "backward_ms", "step_ms", "init_peak_mib",
            "train_peak_mib", "loss", "checksum"}
with median phase times over the steps after --warmup, VmHWM after
initialize() and over training (the peak is reset after initialize through
/proc/self/clear_refs), the last loss and the float64 sum of every
parameter; rank 0 also saves the fp32 parameters to --params.
"""
import argparse
import contextlib
import importlib
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

p = argparse.ArgumentParser()
p.add_argument("--impl", choices=["zshard", "deepspeed"], required=True)
p.add_argument("--model", choices=["mlp", "gpt"], default="mlp")
p.add_argument("--stage", type=int, default=2)
p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--overlap", action="store_true", help="zero_optimization.overlap_comm true")
p.add_argument("--params", default="", help="rank 0 saves the final fp32 parameters here")
args = p.parse_args()
impl = importlib.import_module(args.impl)
rank = int(os.environ["RANK"])
WIDTH = 1792  # the MLP: 4 x 1792^2 + ... = 12.9M parameters; the GPT below has 14.3M


def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return -1.0


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS


def make_model():
    torch.manual_seed(1234)
    if args.model == "gpt":
        from train_gpt import TinyGPT
        return TinyGPT(vocab=4096, dim=384, heads=6, layers=6, seq=64)
    layers = []
    for _ in range(4):
        layers += [torch.nn.Linear(WIDTH, WIDTH), torch.nn.GELU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(WIDTH, 1))


def batch(step):
    g = torch.Generator().manual_seed(1000 * step + rank)
    if args.model == "gpt":
        tokens = torch.randint(0, 4096, (2, 65), generator=g)
        return tokens[:, :-1], tokens[:, 1:]
    x = torch.randn(16, WIDTH, generator=g)
    return x, x[:, :1] * 0.5


def loss_of(model_out, target):
    if args.model == "gpt":
        return torch.nn.functional.cross_entropy(model_out.float().reshape(-1, model_out.shape[-1]),
                                                 target.reshape(-1))
    return torch.nn.functional.mse_loss(model_out.float(), target.float())


config = {"train_micro_batch_size_per_gpu": 2 if args.model == "gpt" else 16, "gradient_accumulation_steps": 1,
          "gradient_clipping": 1.0, "steps_per_print": 10 ** 9,
          "optimizer": {"type": "AdamW", "params": {"lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8,
                                                    "weight_decay": 0.01}},
          "zero_optimization": {"stage": args.stage, **({"overlap_comm": True} if args.overlap else {})}}
if args.dtype == "bf16":
    config["bf16"] = {"enabled": True}
if args.impl == "deepspeed":
    impl.init_distributed(dist_backend="gloo")
model = make_model()
engine, _, _, _ = impl.initialize(model=model, model_parameters=model.parameters(), config=config)
del model
init_peak = peak_mib()
reset_peak()
dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
phases = {"forward": [], "backward": [], "step": []}
for step in range(args.steps):
    x, y = batch(step)
    if args.model == "mlp":
        x = x.to(dtype)
    t0 = time.perf_counter()
    loss = loss_of(engine(x), y)
    t1 = time.perf_counter()
    engine.backward(loss)
    t2 = time.perf_counter()
    engine.step()
    t3 = time.perf_counter()
    if step >= args.warmup:
        for key, seconds in (("forward", t1 - t0), ("backward", t2 - t1), ("step", t3 - t2)):
            phases[key].append(seconds * 1e3)
def gathered(params):
    """Stage 3 keeps a shard only: each implementation's own way to see the whole."""
    if args.stage != 3:
        return contextlib.nullcontext()
    if args.impl == "deepspeed":
        return impl.zero.GatheredParameters(params)
    from zshard import stage3
    return stage3.gathered_parameters(params, None)


with gathered(list(engine.module.parameters())):
    params = [p.detach().float().clone() for p in engine.module.parameters()]
checksum = float(sum(p.double().sum() for p in params))
if rank == 0 and args.params:
    torch.save(params, args.params)
print("RESULT " + json.dumps({"impl": args.impl, "rank": rank, "loss": loss.item(), "checksum": checksum,
                              "init_peak_mib": init_peak, "train_peak_mib": peak_mib(),
                              **{f"{k}_ms": statistics.median(v) for k, v in phases.items()}}), flush=True)
