"""A worker for test_stage3.py: DeepSpeed's stage-3 tools. Custom
initialisation inside zero.GatheredParameters(modifier_rank=0) reaches
every rank's shard; reading inside it sees whole tensors; a module whose
forward uses another module's weight works once the weight is registered
with zero.register_external_parameter, and training then matches torch.
Prints "GATHERED OK"."""
import sys

import torch

import deepspeed
import zshard


class Shared(torch.nn.Module):
    """`out` uses `inner`'s weight (transposed) besides its own bias."""

    def __init__(self):
        super().__init__()
        self.inner = torch.nn.Linear(4, 6)
        self.out_bias = torch.nn.Parameter(torch.zeros(4))

    def forward(self, x):
        h = torch.tanh(self.inner(x))
        return h @ self.inner.weight + self.out_bias


def build():
    torch.manual_seed(0)
    return Shared()


def main():
    model = build()
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config={
        "train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.05}},
        "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0}})
    rank, world = engine.global_rank, engine.world_size
    deepspeed.zero.register_external_parameter(model, model.inner.weight)
    with deepspeed.zero.GatheredParameters(model.inner.bias, modifier_rank=0):
        assert model.inner.bias.shape == (6,)
        if rank == 0:
            model.inner.bias.data.fill_(0.25)  # custom init on one rank
    assert model.inner.bias.numel() == 0  # a placeholder again
    assert torch.equal(engine.full_param_state(model.inner.bias), torch.full((6,), 0.25))
    with deepspeed.zero.GatheredParameters(list(model.parameters())):
        assert sorted(tuple(p.shape) for p in model.parameters()) == [(4,), (6,), (6, 4)]
    for t in range(5):
        g = torch.Generator().manual_seed(10 * t + rank)
        engine.backward(engine(torch.randn(2, 4, generator=g)).pow(2).mean())
        engine.step()
    ref = build()
    with torch.no_grad():
        ref.inner.bias.fill_(0.25)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    for t in range(5):
        opt.zero_grad()
        for r in range(world):
            g = torch.Generator().manual_seed(10 * t + r)
            (ref(torch.randn(2, 4, generator=g)).pow(2).mean() / world).backward()
        opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        got = engine.full_param_state(p)
        assert torch.allclose(got, q, rtol=1e-5, atol=1e-7), (got, q)
    print("GATHERED OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
