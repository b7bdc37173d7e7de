"""Worker for test_observe.py: a small model as users write them (BatchNorm,
a frozen layer, two parameter groups, data that differs per rank, a
torch.distributed call of its own beside the engine's) trained for STEPS
optimizer steps under the config CONFIG; rank 0 records what the engine
said at each step (OUT/record.json), the reference the monitors' files are
checked against.

    observe_check.py CONFIG OUT STEPS
"""
import json
import os
import sys

import torch

import zshard

config, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
rank = int(os.environ["RANK"])
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
                            torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
for p in model[0].parameters():
    p.requires_grad_(False)
decay = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("weight")]
rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("weight")]
groups = [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}]
engine, _, _, _ = zshard.initialize(model=model, model_parameters=groups, config=config)
gas = engine.gradient_accumulation_steps()
data = torch.Generator().manual_seed(100 + rank)
record = []
for step in range(steps):
    losses = []
    for _ in range(gas):
        x = torch.randn(engine.train_micro_batch_size_per_gpu(), 8, generator=data)
        loss = torch.nn.functional.mse_loss(engine(x), x[:, :4] * 2)
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    record.append({"samples": engine.global_samples, "loss": sum(losses) / gas, "lr": engine.get_lr()[0],
                   "grad_norm": engine.get_global_grad_norm(), "loss_scale": engine.loss_scale,
                   "skipped": engine.skipped_steps})
    if engine.monitor.enabled:  # a script's own metric, DeepSpeed's way
        engine.monitor.write_events([("Eval/accuracy", 0.5 + step, engine.global_samples)])
    total = torch.ones(3)
    zshard.comm.all_reduce(total)  # the script's own collective
    assert total.tolist() == [engine.world_size] * 3
if rank == 0:
    with open(os.path.join(out, "record.json"), "w") as f:
        json.dump({"record": record, "collective_bytes": engine._session.reduction_collective_bytes, "gas": gas,
                   "world": engine.world_size, "batch": engine.train_batch_size()}, f)
print(f"OBSERVE OK rank {rank}", flush=True)
