"""A worker for test_offload.py, run under zlaunch: ZeRO-Offload of a small
model with BatchNorm, a frozen layer and two parameter groups (no decay for
biases and norms), accumulation and clipping, compared on rank 0 with
single-process torch AdamW on the same per-rank batches. Each rank's part of
a step's global batch depends only on the step, so a run resumed from a
checkpoint on another rank count continues the same training.
argv: STAGE OFFLOAD FIRST LAST OUT LOAD SAVE
  OFFLOAD: none | cpu | cpu-half (ratio 0.5) | cpu-params (stage 3: offload_param too)
  FIRST..LAST: the steps this run trains (FIRST > 0 resumes from LOAD);
  WORLDS_BEFORE (env): the rank count of each earlier step, comma-separated
  (default: this run's)
  OUT: rank 0 writes the whole fp32 state there (state.pt); LOAD/SAVE: a
  checkpoint directory or "-".
Prints "OFFLOAD MATCH <worst>"."""
import os
import sys

import torch
import torch.nn as nn

import zshard

GAS, BATCH, LR = 2, 12, 5e-3


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(8, 24, bias=False)  # BatchNorm cancels a bias: its gradient is rounding noise
        self.bn = nn.BatchNorm1d(24)
        self.frozen = nn.Linear(24, 24)
        self.frozen.requires_grad_(False)
        self.out = nn.Linear(24, 3)

    def forward(self, x):
        return self.out(torch.relu(self.frozen(torch.relu(self.bn(self.inp(x))))))


def groups(model):
    decay = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("weight") and "bn" not in n]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not any(p is q for q in decay)]
    return [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}]


def batch(step, micro, rank, world):
    g = torch.Generator().manual_seed(100 * step + micro)
    x, y = torch.randn(BATCH, 8, generator=g), torch.randn(BATCH, 3, generator=g)
    rows = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    return x[rows], y[rows]


def config(stage, offload):
    zero = {"stage": stage, "reduce_bucket_size": 200, "stage3_param_persistence_threshold": 0}
    if offload != "none":
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": False,
                                     "ratio": 0.5 if offload == "cpu-half" else 1.0}
        zero["sub_group_size"] = 300
    if offload == "cpu-params":
        zero["offload_param"] = {"device": "cpu"}
    return {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": GAS, "gradient_clipping": 0.5,
            "optimizer": {"type": "AdamW", "params": {"lr": LR, "weight_decay": 0.01}}, "zero_optimization": zero}


def reference(last, worlds):
    """torch AdamW on one process: step t's gradients are the mean over the
    ranks that ran it (worlds[t]) of each rank's micro-batch losses."""
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.AdamW(groups(model), lr=LR)
    for step in range(last):
        opt.zero_grad()
        for micro in range(GAS):
            for r in range(worlds[step]):
                x, y = batch(step, micro, r, worlds[step])
                (nn.functional.mse_loss(model(x), y) / (worlds[step] * GAS)).backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 0.5)
        opt.step()
    return model, opt


def main(stage, offload, first, last, out, load, save):
    torch.manual_seed(0)
    model = Net()
    engine, _, _, _ = zshard.initialize(model=model, model_parameters=groups(model), config=config(stage, offload))
    rank, world = engine.global_rank, engine.world_size
    if first > 0:
        path, _ = engine.load_checkpoint(load)
        assert path, f"nothing loaded from {load}"
    for step in range(first, last):
        for micro in range(GAS):
            x, y = batch(step, micro, rank, world)
            engine.backward(nn.functional.mse_loss(engine(x), y))
            engine.step()
    if save != "-":
        engine.save_checkpoint(save)
    memory = engine._session.memory()
    if offload != "none":  # the fp32 state is in host memory, not the device's account
        assert memory["offloaded"] > 0 and (memory["optimizer"] == 0) == (offload != "cpu-half"), memory
    params = [p for p in model.parameters() if p.requires_grad]
    state = {name: [engine.full_param_state(p, name) for p in params]
             for name in ("master", "exp_avg", "exp_avg_sq")}
    if rank != 0:
        return 0
    torch.save(state, os.path.join(out, "state.pt"))
    before = [int(w) for w in os.environ.get("WORLDS_BEFORE", ",".join([str(world)] * first)).split(",") if w]
    assert len(before) == first, f"WORLDS_BEFORE names {len(before)} steps, {first} ran before"
    ref, opt = reference(last, before + [world] * (last - first))
    refs = [p for p in ref.parameters() if p.requires_grad]
    worst = max(((a - b.detach()).abs().max() / b.detach().abs().max()).item() for a, b in zip(state["master"], refs))
    worst_m = max(((a - opt.state[b]["exp_avg"]).abs().max() / opt.state[b]["exp_avg"].abs().max()).item()
                  for a, b in zip(state["exp_avg"], refs))
    ok = worst < 1e-5 and worst_m < 1e-4
    print(f"OFFLOAD {'MATCH' if ok else 'MISMATCH'} {worst:.3g} exp_avg {worst_m:.3g} world {world} {memory}",
          flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    a = sys.argv[1:]
    sys.exit(main(int(a[0]), a[1], int(a[2]), int(a[3]), a[4], a[5], a[6]))
