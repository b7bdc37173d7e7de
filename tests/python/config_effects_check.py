"""A worker for test_real_models.py: config keys that act at run time, one
case per run under zlaunch (2 CPU workers). Prints "OK <case>" and exits 0.

  last_batch_iteration  the schedule starts from it
  tag_validation        ranks saving under different tags are refused
  fp32_communication    bf16 training with communication_data_type fp32
                        reduces fp32 gradients and trains
  auto_cast             fp16.auto_cast casts floating inputs to fp16
  hf_filled             configs/hf_auto.json with every "auto" filled in as
                        HuggingFace's Trainer does, passed as config=dict
"""
import sys
import tempfile

import torch

import zshard

BASE = {"train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}}}


def make(config, model=None):
    torch.manual_seed(0)
    model = model if model is not None else torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
                                                                torch.nn.Linear(8, 2))
    engine, _, _, _ = zshard.initialize(model=model, config=config)
    return model, engine


def last_batch_iteration(rank):
    _, engine = make(dict(BASE, scheduler={"type": "WarmupLR", "params": {
        "warmup_min_lr": 0, "warmup_max_lr": 0.01, "warmup_num_steps": 100, "warmup_type": "linear",
        "last_batch_iteration": 49}}))
    assert abs(engine.get_lr()[0] - 0.0049) < 1e-12, engine.get_lr()
    engine.backward(engine(torch.ones(2, 4)).sum())
    engine.step()
    assert abs(engine.get_lr()[0] - 0.0050) < 1e-12, engine.get_lr()


def tag_validation(rank):
    _, engine = make(dict(BASE, checkpoint={"tag_validation": "Fail"}))
    engine.backward(engine(torch.ones(2, 4)).sum())
    engine.step()
    with tempfile.TemporaryDirectory() as d:
        try:
            engine.save_checkpoint(d, tag=f"step1-rank{rank}")
        except zshard.ZshardError as e:
            assert "is not the tag of rank" in str(e) and "tag_validation Fail" in str(e), e
            return
    raise AssertionError("different tags were saved")


def fp32_communication(rank):
    model, engine = make(dict(BASE, bf16={"enabled": True}, communication_data_type="fp32",
                              zero_optimization={"stage": 2, "reduce_bucket_size": 16}))
    assert engine._grad_dtype == torch.float32 and model[0].weight.dtype == torch.bfloat16
    gen = torch.Generator().manual_seed(rank)
    x, y = torch.randn(2, 4, generator=gen).bfloat16(), torch.randn(2, 2, generator=gen)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(engine(x).float(), y)
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


class Probe(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(4))
        self.seen = []

    def forward(self, x, extra=None):
        self.seen.append((x.dtype, None if extra is None else extra["t"].dtype, extra and extra["ids"].dtype))
        return (x * self.w).float().sum()


def auto_cast(rank):
    probe = Probe()
    _, engine = make(dict(BASE, fp16={"enabled": True, "auto_cast": True}), model=probe)
    engine(torch.ones(2, 4), extra={"t": torch.ones(2), "ids": torch.ones(2, dtype=torch.long)})
    assert probe.seen == [(torch.float16, torch.float16, torch.long)], probe.seen


def _fill(node, values, path=""):
    if isinstance(node, dict):
        return {k: _fill(v, values, f"{path}.{k}" if path else k) for k, v in node.items()}
    return values[path] if node == "auto" else node


def hf_filled(rank):
    import json
    import os
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "hf_auto.json")) as f:
        template = json.load(f)
    world = zshard.topology()["world_size"]
    values = {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1,
              "train_batch_size": 2 * world, "gradient_clipping": 1.0, "bf16.enabled": False,
              "optimizer.params.lr": 0.01, "optimizer.params.betas": [0.9, 0.999],
              "optimizer.params.eps": 1e-8, "optimizer.params.weight_decay": 0.0,
              "scheduler.params.warmup_min_lr": 0.0, "scheduler.params.warmup_max_lr": 0.01,
              "scheduler.params.warmup_num_steps": 2, "scheduler.params.total_num_steps": 20,
              "zero_optimization.reduce_bucket_size": 64}
    model, engine = make(_fill(template, values))
    x, y = torch.ones(2, 4), torch.zeros(2, 2)
    losses = []
    for _ in range(10):
        loss = torch.nn.functional.mse_loss(engine(x), y)
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    assert engine.train_batch_size() == 2 * world and losses[-1] < losses[0], losses


if __name__ == "__main__":
    case = sys.argv[1]
    globals()[case](zshard.topology()["rank"])
    print(f"OK {case}")
