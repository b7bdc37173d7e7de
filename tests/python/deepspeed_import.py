"""A DeepSpeed script's imports, unchanged: under zlaunch (no real DeepSpeed
installed) `import deepspeed` is zshard's alias. Trains with DeepSpeed's
FusedAdam as the client optimizer and compares with torch AdamW on rank 0;
prints "DEEPSPEED IMPORT OK"."""
import torch

import deepspeed
import deepspeed.comm as dist
from deepspeed.accelerator import get_accelerator
from deepspeed.moe.utils import split_params_into_different_moe_groups_for_optimizer
from deepspeed.ops.adam import DeepSpeedCPUAdam, FusedAdam
from deepspeed.runtime.lr_schedules import OneCycle, WarmupLR

import zshard

assert deepspeed.__version__ == "0.14.5" and zshard.__version__ != deepspeed.__version__


def make():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


with deepspeed.zero.Init():
    model = make()
groups = split_params_into_different_moe_groups_for_optimizer([{"params": list(model.parameters())}])
assert isinstance(DeepSpeedCPUAdam(make().parameters()), torch.optim.Optimizer)
engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=FusedAdam(groups, lr=1e-2, weight_decay=0.01),
                                               config={"train_micro_batch_size_per_gpu": 2,
                                                       "zero_optimization": {"stage": 2}})
device = get_accelerator().device_name()
rank, world = dist.get_rank(), dist.get_world_size()
gen = torch.Generator().manual_seed(2)
data = [torch.randn(2, 4, generator=gen) for _ in range(5 * world)]
with deepspeed.zero.GatheredParameters(list(model.parameters())):
    pass
for t in range(5):
    loss = engine(data[t * world + rank].to(device)).pow(2).mean()
    engine.backward(loss)
    engine.step()
    metric = loss.detach().clone()
    dist.all_reduce(metric, op=dist.ReduceOp.AVG)
if rank == 0:
    ref = make()
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.01)
    for t in range(5):
        opt.zero_grad()
        for r in range(world):
            (ref(data[t * world + r]).pow(2).mean() / world).backward()
        opt.step()
    worst = max(((p - q).abs().max() / q.abs().max()).item() for p, q in zip(model.parameters(), ref.parameters()))
    assert worst < 1e-5, worst
# A second engine with DeepSpeed's WarmupLR as its client scheduler: linear
# warmup 0 -> 0.01 over 4 steps. As in DeepSpeed, the first step runs at
# warmup_min_lr (set at construction) and so does the second (the scheduler's
# iteration 0 after one step), then + 0.0025 per step.
second = make()
opt2 = FusedAdam(second.parameters(), lr=0.01)
engine2, optimizer2, _, sched2 = deepspeed.initialize(
    model=second, optimizer=opt2, config={"train_micro_batch_size_per_gpu": 2},
    lr_scheduler=lambda o: WarmupLR(o, warmup_min_lr=0.0, warmup_max_lr=0.01, warmup_num_steps=4,
                                    warmup_type="linear"))
seen = []
for t in range(6):
    seen.append(optimizer2.param_groups[0]["lr"])
    engine2.backward(engine2(data[rank]).pow(2).mean())
    engine2.step()
assert all(abs(a - b) < 1e-15 for a, b in zip(seen, [0.0, 0.0, 0.0025, 0.005, 0.0075, 0.01])), seen
try:
    OneCycle(optimizer2, 0.1, 1.0)
    raise AssertionError("OneCycle accepted")
except zshard.ConfigError as e:
    assert "config's \"scheduler\" block" in str(e), e
# The whole fp32 weights and moments of a sharded parameter, on every rank.
from deepspeed.utils import safe_get_full_fp32_param, safe_get_full_optimizer_state  # noqa: E402
w = model[0].weight
full = safe_get_full_fp32_param(w)
assert full.shape == w.shape and torch.equal(full, w.detach()), (full - w).abs().max()  # fp32: the model copy is it
assert safe_get_full_optimizer_state(w, "exp_avg_sq").min() >= 0
if rank == 0:
    assert torch.allclose(full, ref[0].weight, rtol=1e-5, atol=1e-7)
# safe_get_full_grad: at stage 0 the averaged gradient after the boundary's
# backward (p.grad); at stage 2 refused, naming why.
from deepspeed.utils import safe_get_full_grad  # noqa: E402

third = make()
engine3, _, _, _ = deepspeed.initialize(model=third, model_parameters=third.parameters(), config={
    "train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.1}},
    "zero_optimization": {"stage": 0}})
engine3.backward(engine3(data[rank]).pow(2).mean())
g = safe_get_full_grad(third[0].weight)
assert g is not None and g.shape == third[0].weight.shape and torch.equal(g, third[0].weight.grad)
engine3.step()
assert safe_get_full_grad(third[0].weight) is None
try:
    safe_get_full_grad(w)
    raise AssertionError("safe_get_full_grad at stage 2 was accepted")
except zshard.ZshardError as e:
    assert "not supported at ZeRO stage 2" in str(e), e
# What zshard lacks imports, and fails at the call naming the feature.
from deepspeed.compression.compress import init_compression  # noqa: E402
from deepspeed.moe.layer import MoE  # noqa: E402
from deepspeed.pipe import LayerSpec, PipelineModule  # noqa: E402

for call, feature in ((lambda: MoE(hidden_size=8, expert=make(), num_experts=2), "mixture of experts"),
                      (lambda: PipelineModule(layers=[make()], num_stages=2), "pipeline parallelism"),
                      (lambda: LayerSpec(torch.nn.Linear, 4, 4), "pipeline parallelism"),
                      (lambda: deepspeed.PipelineModule(layers=[]), "pipeline parallelism"),
                      (lambda: init_compression(model, "ds.json"), "model compression"),
                      (lambda: deepspeed.init_inference(model), "inference engine")):
    try:
        call()
        raise AssertionError(f"{feature}: accepted")
    except zshard.ConfigError as e:
        assert feature in str(e) and "not supported by zshard" in str(e), e
print("DEEPSPEED IMPORT OK")
