"""Worker for test_zero_training.py: fp16 training with dynamic loss scaling.

torch 1.13 has no fp16 matmul on CPU, so the layers keep fp16 weights (the
engine's fp16 views) and compute in fp32; gradients reach the engine as fp16
and carry the loss scale, as in GPU fp16 training. Rank 0 prints the loss
before and after, the loss scale, and the skipped steps. An optional
argument names a ds.json to use instead of the built-in config (the sample
configs' test runs configs/fp16_dynamic.json so on CPU workers)."""
import sys

import torch

import zshard


class Fp32ComputeLinear(torch.nn.Linear):
    def forward(self, x):
        return torch.nn.functional.linear(x, self.weight.float(), self.bias.float())


torch.manual_seed(0)
model = torch.nn.Sequential(Fp32ComputeLinear(16, 64), torch.nn.Tanh(), Fp32ComputeLinear(64, 1))
config = sys.argv[1] if len(sys.argv) > 1 else {
    "train_micro_batch_size_per_gpu": 32, "gradient_clipping": 1.0, "steps_per_print": 1000,
    "fp16": {"enabled": True, "initial_scale_power": 24, "loss_scale_window": 20, "hysteresis": 1},
    "optimizer": {"type": "AdamW", "params": {"lr": 3e-3}}, "zero_optimization": {"stage": 2}}
engine, _, _, _ = zshard.initialize(model=model, config=config)
assert next(model.parameters()).dtype == torch.float16
gen = torch.Generator().manual_seed(1 + zshard.topology()["rank"])
target = torch.nn.Sequential(torch.nn.Linear(16, 1))
losses = []
for step in range(150):
    x = torch.randn(32, 16, generator=gen)
    with torch.no_grad():
        y = torch.sin(target(x))
    loss = torch.nn.functional.mse_loss(engine(x), y)
    engine.backward(loss)
    engine.step()
    losses.append(loss.item())
if zshard.topology()["rank"] == 0:
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(f"FP16 loss {first:.4f} -> {last:.4f} scale {engine._session.loss_scale:g} "
          f"skipped {engine.skipped_steps}")
