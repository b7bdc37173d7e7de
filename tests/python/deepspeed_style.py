"""A script written against DeepSpeed's API with only the import changed."""
import argparse

import torch

import zshard as deepspeed

parser = argparse.ArgumentParser()
parser.add_argument("--local_rank", type=int, default=-1)
parser.add_argument("--deepspeed_config", type=str)
args = parser.parse_args()

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
engine, optimizer, _, lr_scheduler = deepspeed.initialize(args=args, model=model,
                                                          model_parameters=model.parameters())
x, y = torch.randn(64, 8), torch.randn(64, 1)
first = None
for step in range(30):
    loss = torch.nn.functional.mse_loss(engine(x), y)
    first = first if first is not None else loss.item()
    engine.backward(loss)
    engine.step()
print(f"loss {first:.4f} -> {loss.item():.4f}, global_steps {engine.global_steps}, lr {engine.get_lr()[0]:.2e}")
assert loss.item() < first
