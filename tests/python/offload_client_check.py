"""A worker for test_offload.py: with offload_optimizer, a client torch
AdamW becomes zshard's fused AdamW stepped on the host (trains), and an
untested client optimizer (zero_allow_untested_optimizer) is refused at
initialize() naming the key, as DeepSpeed's zero_force_ds_cpu_optimizer.
argv: torch | untested. Prints "CLIENT OK" or "CLIENT REFUSED <message>"."""
import sys

import torch

import zshard


class Plain(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, {"lr": 0.1})

    def step(self, closure=None):
        pass


def main(kind):
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    config = {"train_micro_batch_size_per_gpu": 2,
              "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}}
    if kind == "torch":
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    else:
        optimizer, config["zero_allow_untested_optimizer"] = Plain(model.parameters()), True
    try:
        engine, _, _, _ = zshard.initialize(model=model, optimizer=optimizer, config=config)
    except zshard.ZshardError as e:
        print("CLIENT REFUSED", e, flush=True)
        return 0
    before = model.weight.detach().clone()
    engine.backward(engine(torch.randn(2, 6)).sum())
    engine.step()
    assert engine._session.memory()["offloaded"] > 0
    assert not torch.equal(before, model.weight.detach()), "the step changed nothing"
    print("CLIENT OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
