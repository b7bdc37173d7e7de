"""Worker of bench/monitor_overhead.sh: trains an MLP (4 x 512 wide, batch
32 per rank, fp32, ZeRO-2 with several buckets) for STEPS optimizer steps
under CONFIG (every watcher on) and prints, on rank 0,

    RESULT <median off step s> <median on step s> <hook s per step, on> <hook s, off>

Each step has the watchers switched off or on at random (at run time:
monitors, run log, trace, comms log), so both halves share the machine's
state, its drift and any periodic pattern; the steps before WARMUP (the
flops profiler's among them) are left out. The hook figures are the observer's calls alone, run without
training (what every step pays, without training's noise)."""
import random
import statistics
import sys
import time

import torch

import zshard
from zshard import _C

WARMUP = 6
config, steps = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
torch.set_num_threads(1)
layers = []
for _ in range(4):
    layers += [torch.nn.Linear(512, 512), torch.nn.GELU()]
model = torch.nn.Sequential(*layers)
engine, _, _, _ = zshard.initialize(model=model, model_parameters=model.parameters(), config=config)
observer = engine._observer
watching = {k: getattr(observer, k) for k in ("_monitors", "_run_log", "_trace_dir", "_wants_loss")}


def watch(on):
    """Every watcher on (as configured) or off (the phases still timed, as
    in a run without any)."""
    for key, value in watching.items():
        setattr(observer, key, value if on else (False if key == "_wants_loss" else None))
    _C.trace_set_recording(on)
    _C.comms_configure(on)


x = torch.randn(32, 512)
times = {False: [], True: []}
order = random.Random(7)  # the same sequence on every rank
for step in range(steps):
    on = order.random() < 0.5
    watch(on)
    begin = time.perf_counter()
    loss = engine(x).square().mean()
    engine.backward(loss)
    engine.step()
    if step >= WARMUP:
        times[on].append(time.perf_counter() - begin)


def hook_cost(on, calls=2000):
    watch(on)
    begin = time.perf_counter()
    for _ in range(calls):
        observer.forward_end(observer.forward_start(engine.global_steps))
        observer.backward_end(observer.backward_start(loss))
        observer.step_end(observer.step_start(), True, engine)
    return (time.perf_counter() - begin) / calls


cost_on, cost_off = hook_cost(True), hook_cost(False)
watch(True)
if engine.global_rank == 0:
    print(f"RESULT {statistics.median(times[False]):.6f} {statistics.median(times[True]):.6f} "
          f"{cost_on:.9f} {cost_off:.9f}", flush=True)
