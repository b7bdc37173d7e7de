"""Worker for test_zero_training.py: zshard.comm beside an engine in one process."""
import torch

import zshard

zshard.init_distributed()
rank, world = zshard.comm.get_rank(), zshard.comm.get_world_size()
t = torch.tensor([float(rank + 1), 1.0])
zshard.comm.all_reduce(t)
zshard.comm.barrier()
assert t.tolist() == [world * (world + 1) / 2, float(world)], t
model = torch.nn.Linear(4, 2)
torch.manual_seed(0)
model = torch.nn.Linear(4, 2)
engine, _, _, _ = zshard.initialize(model=model, config={"train_micro_batch_size_per_gpu": 2,
                                                         "optimizer": {"type": "SGD", "params": {"lr": 0.1}}})
engine.backward(engine(torch.ones(2, 4)).sum())
engine.step()
print(f"COMM OK rank {rank} of {world}")
