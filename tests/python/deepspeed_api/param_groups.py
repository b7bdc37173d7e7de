"""DeepSpeed client: a GPT-style model whose parameters are split into the
usual groups (no weight decay for biases and LayerNorm weights, which also
get their own learning rate), the optimizer in ds.json, gradient clipping
and accumulation at ZeRO-2 (deepspeed.initialize(model_parameters=groups))."""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import deepspeed
from recipe import batch, max_relative_error, report, torch_reference

STEPS, GAS, MICRO, VOCAB = 12, 2, 4, 32
CONFIG = {"train_micro_batch_size_per_gpu": MICRO, "gradient_accumulation_steps": GAS, "gradient_clipping": 1.0,
          "optimizer": {"type": "AdamW", "params": {"lr": 2e-3, "betas": [0.9, 0.95], "eps": 1e-8,
                                                      "weight_decay": 0.01}},
          "zero_optimization": {"stage": 2, "reduce_bucket_size": 200}}


class TinyGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, 16)
        self.ln_1 = nn.LayerNorm(16)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.ln_f = nn.LayerNorm(16)
        self.lm_head = nn.Linear(16, VOCAB, bias=False)

    def forward(self, idx):
        x = self.wte(idx)
        x = x + self.mlp(self.ln_1(x))
        return self.lm_head(self.ln_f(x))


def build():
    torch.manual_seed(0)
    return TinyGPT()


def grouped_parameters(model):
    no_decay = ("bias", "ln_1.weight", "ln_f.weight")
    return [{"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
             "weight_decay": 0.1},
            {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
             "weight_decay": 0.0, "lr": 1e-3}]


def tokens(g):
    return torch.randint(0, VOCAB, (MICRO, 9), generator=g)


def loss_of(model, step, micro, rank):
    idx = batch(step, micro, rank, tokens)
    logits = model(idx[:, :-1])
    return F.cross_entropy(logits.reshape(-1, VOCAB), idx[:, 1:].reshape(-1))


def main():
    model = build()
    engine, optimizer, _, _ = deepspeed.initialize(model=model, model_parameters=grouped_parameters(model),
                                                   config=CONFIG)
    rank, world = engine.global_rank, engine.world_size
    assert [g["lr"] for g in optimizer.param_groups] == [2e-3, 1e-3], optimizer.param_groups
    for step in range(STEPS):
        for micro in range(GAS):
            engine.backward(loss_of(engine, step, micro, rank))
            engine.step()
    if rank != 0:
        return 0
    ref = build()
    opt = torch.optim.AdamW(grouped_parameters(ref), lr=2e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.01)
    torch_reference(ref, opt, STEPS, world, GAS, loss_of, clip=1.0)
    return report("param_groups", max_relative_error([model], [ref]), engine.global_steps)


if __name__ == "__main__":
    sys.exit(main())
