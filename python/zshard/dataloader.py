"""DeepSpeed's training-data loader (initialize(training_data=...) and
engine.deepspeed_io()): each rank reads its share of a map-style torch
Dataset through a DistributedSampler over the data-parallel ranks, in
micro batches, with DeepSpeed's defaults (shuffled with seed 0, two worker
processes, the config's dataloader_drop_last). Iterating starts a pass;
call loader.data_sampler.set_epoch(e) for a new order each epoch, as with
DeepSpeed."""
import math

import torch
import torch.utils.data

from zshard import _C


class DataLoader:
    def __init__(self, dataset, batch_size, rank, world_size, drop_last, collate_fn=None, data_sampler=None,
                 num_workers=2, pin_memory=False):
        if not isinstance(dataset, torch.utils.data.Dataset) or isinstance(dataset,
                                                                           torch.utils.data.IterableDataset):
            raise _C.ConfigError(f"training_data: expected a map-style torch.utils.data.Dataset (with __len__ "
                                 f"and __getitem__), got {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.data_sampler = data_sampler or torch.utils.data.DistributedSampler(
            dataset, num_replicas=world_size, rank=rank)
        self.collate_fn = collate_fn
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.drop_last = drop_last
        batches = len(self.data_sampler) / batch_size
        self.len = math.floor(batches) if drop_last else math.ceil(batches)
        self._it = None

    def __len__(self):
        return self.len

    def __iter__(self):
        self._it = iter(torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=self.data_sampler, collate_fn=self.collate_fn,
            num_workers=self.num_workers, pin_memory=self.pin_memory, drop_last=self.drop_last))
        return self

    def __next__(self):
        if self._it is None:
            iter(self)
        return next(self._it)
