"""A DeepSpeed-style script's argument handling: deepspeed.add_config_arguments
and --deepspeed --deepspeed_config on the command line (no zlaunch --config)."""
import argparse

import torch

import zshard as deepspeed

parser = argparse.ArgumentParser(description="DeepSpeed-style arguments")
parser.add_argument("--local_rank", type=int, default=-1)
parser = deepspeed.add_config_arguments(parser)
args = parser.parse_args()
assert args.deepspeed and args.deepspeed_config

torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
engine, _, _, _ = deepspeed.initialize(args=args, model=model, model_parameters=model.parameters())
engine.backward(engine(torch.ones(2, 4)).sum())
engine.step()
print(f"ARGS OK micro {engine.train_micro_batch_size_per_gpu()}")
