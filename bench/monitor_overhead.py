"""Worker of bench/monitor_overhead.sh: trains an MLP (4 x 512 wide, batch
32 per rank, fp32, ZeRO-2 with several buckets) for STEPS optimizer steps
under CONFIG and prints, on rank 0, `RESULT <median step seconds> <hook
seconds per step>`: the median over the steps after WARMUP (the flops
profiler's step falls in the warm-up), and what the observer's hooks cost
per step when run alone.

    monitor_overhead.py CONFIG STEPS
"""
import statistics
import sys
import time

import torch

import zshard

WARMUP = 5
config, steps = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
torch.set_num_threads(1)
layers = []
for _ in range(4):
    layers += [torch.nn.Linear(512, 512), torch.nn.GELU()]
model = torch.nn.Sequential(*layers)
engine, _, _, _ = zshard.initialize(model=model, model_parameters=model.parameters(), config=config)
x = torch.randn(32, 512)
times = []
for step in range(steps):
    begin = time.perf_counter()
    loss = engine(x).square().mean()
    engine.backward(loss)
    engine.step()
    times.append(time.perf_counter() - begin)
# The watchers' own cost per optimizer step, without training's noise: the
# hooks engine.forward/backward/step call, run alone (every one of them
# writes what a real step writes: events, trace slices, run log lines).
observer = engine._observer
hooks = 2000
begin = time.perf_counter()
for _ in range(hooks):
    observer.forward_end(observer.forward_start(engine.global_steps))
    observer.backward_end(observer.backward_start(loss))
    observer.step_end(observer.step_start(), True, engine)
cost = (time.perf_counter() - begin) / hooks
if engine.global_rank == 0:
    print(f"RESULT {statistics.median(times[WARMUP:]):.6f} {cost:.9f}", flush=True)
