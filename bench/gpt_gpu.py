"""One side of bench/gpt_gpu.sh on one GPU (--impl): the example GPT
(examples/train_gpt.py's TinyGPT at GPT-2 medium's shape: vocab 50304,
dim 1024, 16 heads, 24 layers, 1024 tokens; ~355M parameters) trained on
the same generated tokens, either

  zshard  ZeRO stage 2 with bf16 (parameters and gradients bf16, fp32 master
          and Adam state in the engine), one rank, or
  torch   fp32 parameters, torch.autocast(bfloat16), torch.optim.AdamW(fused=True)
          — what a user writes without zshard.

Both: AdamW lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight decay 0.01,
clipping 1.0. Prints one line
    RESULT {"impl", "params", "step_ms", "tokens_per_s", "peak_gib", "loss"}
with the median step time (forward + backward + step, synchronised wall clock) over the
steps after --warmup and torch.cuda.max_memory_allocated over training.
Without a GPU it runs on the CPU (a smoke run of the script itself: wall
clock, no memory figure).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from train_gpt import TinyGPT  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--impl", choices=["zshard", "torch"], required=True)
p.add_argument("--steps", type=int, default=12)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--batch", type=int, default=8, help="sequences per step")
p.add_argument("--layers", type=int, default=24)
p.add_argument("--dim", type=int, default=1024)
args = p.parse_args()
VOCAB, SEQ = 50304, 1024
LR = dict(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
GPU = torch.cuda.is_available()
DEVICE = "cuda" if GPU else "cpu"


def batch(step):
    g = torch.Generator().manual_seed(step)
    tokens = torch.randint(0, VOCAB, (args.batch, SEQ + 1), generator=g).to(DEVICE)
    return tokens[:, :-1], tokens[:, 1:]


def loss_of(logits, target):
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, VOCAB), target.reshape(-1))


def make_model():
    torch.manual_seed(0)
    return TinyGPT(vocab=VOCAB, dim=args.dim, heads=16, layers=args.layers, seq=SEQ).to(DEVICE)


def zshard_side():
    import zshard
    model = make_model()
    config = {"train_micro_batch_size_per_gpu": args.batch, "gradient_clipping": 1.0,
              "steps_per_print": 10 ** 9, "bf16": {"enabled": True},
              "optimizer": {"type": "AdamW", "params": {"lr": LR["lr"], "betas": list(LR["betas"]),
                                                        "eps": LR["eps"], "weight_decay": LR["weight_decay"]}},
              "zero_optimization": {"stage": 2, "overlap_comm": True}}
    engine, _, _, _ = zshard.initialize(model=model, model_parameters=model.parameters(), config=config)

    def step(x, y):
        loss = loss_of(engine(x), y)
        engine.backward(loss)
        engine.step()
        return loss
    return sum(p.numel() for p in model.parameters()), step


def torch_side():
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), **({"fused": True} if GPU else {}), **LR)

    def step(x, y):
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            loss = loss_of(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss
    return sum(p.numel() for p in model.parameters()), step


def main():
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    params, step = zshard_side() if args.impl == "zshard" else torch_side()
    times = []
    for s in range(args.steps):
        if s == args.warmup and GPU:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        x, y = batch(s)
        if GPU:
            torch.cuda.synchronize()
        begin = time.perf_counter()
        loss = step(x, y)
        if GPU:
            torch.cuda.synchronize()
        if s >= args.warmup:
            times.append((time.perf_counter() - begin) * 1e3)
    step_ms = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if GPU else -1.0
    print("RESULT " + json.dumps({"impl": args.impl, "params": params, "step_ms": step_ms,
                                  "tokens_per_s": args.batch * SEQ / (step_ms / 1e3),
                                  "peak_gib": peak, "loss": loss.item()}), flush=True)


if __name__ == "__main__":
    main()
