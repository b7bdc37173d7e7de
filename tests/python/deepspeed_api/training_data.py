"""DeepSpeed client from the CIFAR-10 tutorial's pattern: a Dataset and a
collate_fn given to deepspeed.initialize(training_data=, collate_fn=), the
returned loader iterated for two epochs (DistributedSampler over the
data-parallel ranks, the micro batch size, dataloader_drop_last), SGD with
momentum in ds.json, ZeRO-0. The reference reads the same samples."""
import sys

import torch

import deepspeed
from recipe import max_relative_error, report, torch_reference

MICRO, EPOCHS = 5, 2
CONFIG = {"train_micro_batch_size_per_gpu": MICRO, "dataloader_drop_last": True,
          "optimizer": {"type": "SGD", "params": {"lr": 0.05, "momentum": 0.9}},
          "zero_optimization": {"stage": 0}}


class Pairs(torch.utils.data.Dataset):
    """63 (features, label) records as dicts, like a tokenised dataset."""

    def __init__(self):
        g = torch.Generator().manual_seed(11)
        self.x, self.y = torch.randn(63, 7, generator=g), torch.randn(63, 2, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"features": self.x[i], "target": self.y[i]}


def collate(records):
    return torch.stack([r["features"] for r in records]), torch.stack([r["target"] for r in records])


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(7, 12), torch.nn.Tanh(), torch.nn.Linear(12, 2))


def main():
    data = Pairs()
    model = build()
    engine, _, loader, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(),
                                                training_data=data, collate_fn=collate, config=CONFIG)
    rank, world = engine.global_rank, engine.world_size
    steps_per_epoch = (len(data) // world) // MICRO  # drop_last: the short last batch is dropped
    assert len(loader) == steps_per_epoch, (len(loader), steps_per_epoch)
    for _ in range(EPOCHS):
        for x, y in loader:
            assert x.shape == (MICRO, 7)
            engine.backward(torch.nn.functional.mse_loss(engine(x), y))
            engine.step()
    if rank != 0:
        return 0
    orders = [list(torch.utils.data.DistributedSampler(data, num_replicas=world, rank=r)) for r in range(world)]

    def loss_of(m, step, micro, r):
        s = step % steps_per_epoch
        x, y = collate([data[i] for i in orders[r][s * MICRO:(s + 1) * MICRO]])
        return torch.nn.functional.mse_loss(m(x), y)

    ref = build()
    torch_reference(ref, torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9), EPOCHS * steps_per_epoch, world, 1,
                    loss_of)
    assert engine.global_steps == EPOCHS * steps_per_epoch >= 10
    return report("training_data", max_relative_error([model], [ref]), engine.global_steps)


if __name__ == "__main__":
    sys.exit(main())
