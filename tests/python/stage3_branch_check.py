"""A worker for test_stage3.py: at ZeRO stage 3, rank 0 runs branch `a`
and the other ranks branch `b` in the same step. The gather exchange finds
it: every rank fails at once with an error naming its module and each
rank's parameters, instead of hanging or mixing gradients. Prints
"BRANCH REFUSED <module>"."""
import sys

import torch

import zshard


class TwoBranches(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 4)
        self.b = torch.nn.Linear(4, 4)

    def forward(self, x, rank):
        return (self.a if rank == 0 else self.b)(x)


def main():
    torch.manual_seed(0)
    model = TwoBranches()
    engine, _, _, _ = zshard.initialize(model=model, model_parameters=model.parameters(), config={
        "train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.1}},
        "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0}})
    try:
        engine(torch.ones(2, 4), engine.global_rank).sum()
    except zshard.ZshardError as e:
        text = str(e)
        assert "ran different modules" in text and "rank 0 parameters" in text and "rank 1 parameters" in text, text
        module = "a" if engine.global_rank == 0 else "b"
        assert f"module {module!r}" in text, text
        print(f"BRANCH REFUSED {module}", flush=True)
        return 0
    raise AssertionError("ranks ran different modules at stage 3 unnoticed")


if __name__ == "__main__":
    sys.exit(main())
