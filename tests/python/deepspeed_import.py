"""A DeepSpeed script's imports, unchanged: under zlaunch (no real DeepSpeed
installed) `import deepspeed` is zshard's alias. Trains with DeepSpeed's
FusedAdam as the client optimizer and compares with torch AdamW on rank 0;
prints "DEEPSPEED IMPORT OK"."""
import torch

import deepspeed
import deepspeed.comm as dist
from deepspeed.accelerator import get_accelerator
from deepspeed.moe.utils import split_params_into_different_moe_groups_for_optimizer
from deepspeed.ops.adam import DeepSpeedCPUAdam, FusedAdam

import zshard

assert deepspeed.__version__ == "0.14.5" and zshard.__version__ != deepspeed.__version__


def make():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


with deepspeed.zero.Init():
    model = make()
groups = split_params_into_different_moe_groups_for_optimizer([{"params": list(model.parameters())}])
assert isinstance(DeepSpeedCPUAdam(make().parameters()), torch.optim.Optimizer)
engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=FusedAdam(groups, lr=1e-2, weight_decay=0.01),
                                               config={"train_micro_batch_size_per_gpu": 2,
                                                       "zero_optimization": {"stage": 2}})
device = get_accelerator().device_name()
rank, world = dist.get_rank(), dist.get_world_size()
gen = torch.Generator().manual_seed(2)
data = [torch.randn(2, 4, generator=gen) for _ in range(5 * world)]
with deepspeed.zero.GatheredParameters(list(model.parameters())):
    pass
for t in range(5):
    loss = engine(data[t * world + rank].to(device)).pow(2).mean()
    engine.backward(loss)
    engine.step()
    metric = loss.detach().clone()
    dist.all_reduce(metric, op=dist.ReduceOp.AVG)
if rank == 0:
    ref = make()
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.01)
    for t in range(5):
        opt.zero_grad()
        for r in range(world):
            (ref(data[t * world + r]).pow(2).mean() / world).backward()
        opt.step()
    worst = max(((p - q).abs().max() / q.abs().max()).item() for p, q in zip(model.parameters(), ref.parameters()))
    assert worst < 1e-5, worst
print("DEEPSPEED IMPORT OK")
