"""A worker for test_stage3.py, run under zlaunch: ZeRO stage 3 on a small
language model with tied input/output embeddings, LayerNorm, a frozen
layer, gradient accumulation and clipping, compared on rank 0 with
single-process torch AdamW on the same batches (20 steps). Between steps
the parameters are empty placeholders with ds_shape; module.state_dict()
is refused; save_16bit_model() writes whole tensors. Prints "STAGE3 MATCH".
argv: PERSISTENCE_THRESHOLD OUT_DIR whole|init|init-stage2 (init: the
model built under zero.Init, so sharded as it is built; init-stage2: the
same model trained at stage 2, made whole at initialize)."""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import zshard
from zshard.stage3 import gathered_parameters as GatheredParameters
from zshard.zero_init import Init

STEPS, GAS, MICRO, VOCAB = 20, 2, 3, 24


class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 12)
        self.frozen = nn.Linear(12, 12)
        self.frozen.requires_grad_(False)
        self.ln = nn.LayerNorm(12)
        self.mlp = nn.Sequential(nn.Linear(12, 20), nn.GELU(), nn.Linear(20, 12))
        self.head = nn.Linear(12, VOCAB, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, idx):
        x = self.embed(idx)
        x = x + self.frozen(x)
        x = x + self.mlp(self.ln(x))
        return self.head(x)


def build(init=False):
    """The model (under zero.Init when `init`: sharded as it is built), then
    a custom change of a built module's weight, inside GatheredParameters
    as DeepSpeed requires under Init."""
    torch.manual_seed(0)
    with Init(enabled=init):
        model = TiedLM()
    with GatheredParameters(model.ln.weight, modifier_rank=0):
        model.ln.weight.data.mul_(1.5)
    if init:
        assert model.mlp[0].weight.numel() == 0 and tuple(model.mlp[0].weight.ds_shape) == (20, 12)
    return model


def tokens(step, micro, rank):
    g = torch.Generator().manual_seed(1000 * step + 10 * micro + rank)
    return torch.randint(0, VOCAB, (MICRO, 7), generator=g)


def loss_of(model, idx):
    logits = model(idx[:, :-1])
    return F.cross_entropy(logits.reshape(-1, VOCAB), idx[:, 1:].reshape(-1))


def main(threshold, out, built):
    stage = 2 if built == "init-stage2" else 3
    model = build(built != "whole")
    engine, _, _, _ = zshard.initialize(model=model, model_parameters=model.parameters(), config={
        "train_micro_batch_size_per_gpu": MICRO, "gradient_accumulation_steps": GAS, "gradient_clipping": 1.0,
        "optimizer": {"type": "AdamW", "params": {"lr": 5e-3, "weight_decay": 0.01}},
        "zero_optimization": {"stage": stage, "reduce_bucket_size": 100,
                              "stage3_param_persistence_threshold": threshold,
                              "stage3_gather_16bit_weights_on_model_save": True}})
    rank, world = engine.global_rank, engine.world_size
    for step in range(STEPS):
        for micro in range(GAS):
            engine.backward(loss_of(engine, tokens(step, micro, rank)))
            engine.step()
        if threshold == 0 and stage == 3:
            w = model.mlp[0].weight
            assert w.numel() == 0 and tuple(w.ds_shape) == (20, 12), (w.shape, w.ds_shape)
    if stage == 2:  # made whole at initialize()
        assert model.mlp[0].weight.shape == (20, 12)
    elif threshold == 0:  # every parameter a placeholder between steps
        try:
            model.state_dict()
            raise AssertionError("model.state_dict() with placeholders was accepted")
        except zshard.ZshardError as e:
            assert "ZeRO stage 3" in str(e), e
    else:  # all under the threshold: kept whole, current after every step
        assert model.mlp[0].weight.shape == (20, 12)
    assert engine.save_16bit_model(out, "model.bin")
    if rank != 0:
        return 0
    ref = build()
    opt = torch.optim.AdamW([p for p in ref.parameters() if p.requires_grad], lr=5e-3, weight_decay=0.01)
    for step in range(STEPS):
        opt.zero_grad()
        for micro in range(GAS):
            for r in range(world):
                (loss_of(ref, tokens(step, micro, r)) / (world * GAS)).backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
        opt.step()
    saved = torch.load(os.path.join(out, "model.bin"))
    expected = ref.state_dict()
    assert set(saved) == set(expected), (set(saved) ^ set(expected))
    worst = max(((saved[k].float() - v).abs().max() / v.abs().max().clamp(min=1e-12)).item()
                for k, v in expected.items())
    print(f"STAGE3 {'MATCH' if worst < 1e-5 else 'MISMATCH'} {worst:.3g} world {world}", flush=True)
    return 0 if worst < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
