"""DeepSpeed client that uses torch.distributed beside the engine, as
scripts do once deepspeed.initialize() has brought it up: its own
DistributedSampler, dist.get_rank()/get_world_size(), an all_reduce of the
loss for logging (and deepspeed.comm's), dist.barrier(); Adam at ZeRO-2.
The logged mean loss and the weights are checked against the reference."""
import sys

import torch
import torch.distributed as dist

import deepspeed
import deepspeed.comm as ds_dist
from recipe import max_relative_error, report, torch_reference

MICRO, STEPS = 4, 10
CONFIG = {"train_micro_batch_size_per_gpu": MICRO, "steps_per_print": 1000,
          "optimizer": {"type": "Adam", "params": {"lr": 3e-3}}, "zero_optimization": {"stage": 2}}


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 10), torch.nn.SiLU(), torch.nn.Linear(10, 1))


def dataset():
    g = torch.Generator().manual_seed(21)
    return torch.utils.data.TensorDataset(torch.randn(80, 5, generator=g), torch.randn(80, 1, generator=g))


def main():
    model = build()
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=CONFIG)
    assert dist.is_initialized() and dist.get_rank() == engine.global_rank
    world = dist.get_world_size()
    assert world == engine.world_size == ds_dist.get_world_size()
    data = dataset()
    sampler = torch.utils.data.DistributedSampler(data, shuffle=False)
    loader = torch.utils.data.DataLoader(data, batch_size=MICRO, sampler=sampler)
    logged = []
    for step, (x, y) in zip(range(STEPS), loader):
        loss = torch.nn.functional.mse_loss(engine(x), y)
        engine.backward(loss)
        engine.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)  # torch's own collective, beside the engine's
        mean /= world
        again = loss.detach().clone()
        ds_dist.all_reduce(again, op=ds_dist.ReduceOp.AVG)
        assert torch.allclose(mean, again)
        logged.append(mean.item())
    dist.barrier()
    if engine.global_rank != 0:
        return 0
    shards = [list(torch.utils.data.DistributedSampler(data, num_replicas=world, rank=r, shuffle=False))
              for r in range(world)]
    ref, ref_losses = build(), []

    def loss_of(m, step, micro, r):
        x, y = data[shards[r][step * MICRO:(step + 1) * MICRO]]
        loss = torch.nn.functional.mse_loss(m(x), y)
        ref_losses.append(loss.item())
        return loss

    torch_reference(ref, torch.optim.Adam(ref.parameters(), lr=3e-3), STEPS, world, 1, loss_of)
    ref_mean = [sum(ref_losses[s * world:(s + 1) * world]) / world for s in range(STEPS)]
    loss_err = max(abs(a - b) / abs(b) for a, b in zip(logged, ref_mean))
    assert loss_err < 1e-5, (logged, ref_mean)
    return report("torch_distributed_metrics", max_relative_error([model], [ref]), engine.global_steps)


if __name__ == "__main__":
    sys.exit(main())
