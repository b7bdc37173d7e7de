"""A small GPT-style model trained with zshard on generated data (no downloads).

    zlaunch --config configs/zero2.json examples/train_gpt.py            # one worker per GPU
    zlaunch --nproc-per-node 2 --config configs/zero2.json examples/train_gpt.py   # CPU workers
    zlaunch ... examples/train_gpt.py --save-dir ckpt --save-interval 50  # resumes from ckpt/latest

With --save-dir, the run saves a sharded checkpoint every --save-interval
steps and at the end, and starts by resuming from the latest one there (on
any number of workers); `python3 -m zshard.consolidate ckpt model.pt` turns
it into a plain state dict.

The data is a fixed random "language": each token determines the next one up
to noise, so the loss falls quickly from log(vocab). Works on CPU workers and
on GPUs (the model goes to the worker's GPU when one is visible).
"""
import argparse
import math
import os
import time

import torch

import zshard


class Block(torch.nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.ln1, self.ln2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.attn = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(), torch.nn.Linear(4 * dim, dim))

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TinyGPT(torch.nn.Module):
    def __init__(self, vocab=64, dim=64, heads=4, layers=2, seq=32):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, dim)
        self.pos = torch.nn.Parameter(torch.zeros(1, seq, dim))
        self.blocks = torch.nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, vocab)
        self.register_buffer("mask", torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1))

    def forward(self, tokens):
        x = self.tok(tokens) + self.pos[:, : tokens.shape[1]]
        mask = self.mask[: tokens.shape[1], : tokens.shape[1]].to(x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln(x))


def batches(vocab, seq, micro, rank, world, seed=1234):
    """Each rank draws its own micro-batches from the same generated language."""
    gen = torch.Generator().manual_seed(seed)
    successor = torch.randperm(vocab, generator=gen)
    gen.manual_seed(seed + 1 + rank)
    while True:
        tokens = torch.empty(micro, seq + 1, dtype=torch.long)
        tokens[:, 0] = torch.randint(vocab, (micro,), generator=gen)
        for t in range(seq):
            noise = torch.rand(micro, generator=gen) < 0.1
            tokens[:, t + 1] = torch.where(noise, torch.randint(vocab, (micro,), generator=gen),
                                           successor[tokens[:, t]])
        yield tokens[:, :-1], tokens[:, 1:]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps")
    parser.add_argument("--deepspeed_config", type=str, default=None, help="ds.json (zlaunch --config sets it)")
    parser.add_argument("--local_rank", type=int, default=-1)
    parser.add_argument("--save-dir", default=None, help="checkpoint directory (resumed from when it has one)")
    parser.add_argument("--save-interval", type=int, default=100, help="steps between checkpoints")
    args = parser.parse_args()
    topo = zshard.topology()
    torch.manual_seed(0)  # the same initial weights on every rank
    model = TinyGPT()
    if torch.cuda.is_available():
        model = model.to(f"cuda:{topo['local_rank'] % torch.cuda.device_count()}")
    engine, _, _, _ = zshard.initialize(args=args, model=model, model_parameters=model.parameters())
    dtype = next(model.parameters()).dtype
    if args.save_dir:
        path, client = engine.load_checkpoint(args.save_dir)
        if path is not None and topo["rank"] == 0:
            print(f"resumed from {path} at step {engine.global_steps} (saved by {client['workers']} workers)")
    data = batches(64, 32, engine.train_micro_batch_size_per_gpu(), topo["rank"], topo["world_size"])
    first = last = None
    start, start_step = time.time(), engine.global_steps
    while engine.global_steps < args.steps:
        x, y = next(data)
        x, y = x.to(engine.device), y.to(engine.device)
        logits = engine(x)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        engine.backward(loss)
        before = engine.global_steps
        engine.step()
        first = loss.item() if first is None else first
        last = loss.item()
        if topo["rank"] == 0 and engine.global_steps != before and engine.global_steps % 20 == 0:
            print(f"step {engine.global_steps:4d}  loss {loss.item():.3f}  lr {engine.get_lr()[0]:.2e}", flush=True)
        done = engine.global_steps >= args.steps
        if args.save_dir and engine.global_steps != before and (engine.global_steps % args.save_interval == 0 or done):
            engine.save_checkpoint(args.save_dir, client_state={"workers": topo["world_size"]})
    if topo["rank"] == 0 and first is not None:
        samples = (engine.global_steps - start_step) * engine.train_batch_size()
        print(f"done: {engine.global_steps - start_step} steps, {topo['world_size']} workers, {dtype}, loss {first:.3f} -> {last:.3f} "
              f"(uniform guess {math.log(64):.3f}), {samples / (time.time() - start):.0f} samples/s", flush=True)


if __name__ == "__main__":
    main()
