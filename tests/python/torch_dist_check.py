"""A worker for test_engine_surface.py: torch.distributed beside zshard.

  own            the script calls init_process_group("gloo") itself (env://,
                 zlaunch's MASTER_PORT is torch's own), then initialize()
  by_initialize  initialize() brings torch.distributed up; the script uses it
Both then all_reduce a metric with torch and zshard.comm (SUM, AVG, MAX),
use a DistributedSampler and train a step. Prints "OK <case> <rank>"."""
import sys

import torch
import torch.distributed as dist
import torch.utils.data

import zshard


def main(case):
    if case == "own":
        dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    engine, _, _, _ = zshard.initialize(model=model, config={
        "train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.1}}})
    topo = zshard.topology()
    assert dist.is_initialized() and dist.get_rank() == topo["rank"] and dist.get_world_size() == topo["world_size"]
    rank, world = dist.get_rank(), dist.get_world_size()
    metric = torch.tensor([float(rank + 1)])
    dist.all_reduce(metric)
    assert metric.item() == world * (world + 1) / 2, metric
    avg = torch.tensor([float(rank)], dtype=torch.float64)
    zshard.comm.all_reduce(avg, op=zshard.comm.ReduceOp.AVG)
    assert avg.item() == (world - 1) / 2, avg
    top = torch.tensor([rank], dtype=torch.int32)
    zshard.comm.all_reduce(top, op=zshard.comm.ReduceOp.MAX)
    assert top.item() == world - 1, top
    sampler = torch.utils.data.distributed.DistributedSampler(range(8 * world), shuffle=False)
    assert list(sampler) == list(range(rank, 8 * world, world))
    dist.barrier()
    engine.backward(engine(torch.ones(2, 4)).sum())
    engine.step()
    print(f"OK {case} {rank}")


if __name__ == "__main__":
    main(sys.argv[1])
