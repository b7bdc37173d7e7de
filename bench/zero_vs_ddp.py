"""Worker of bench/zero_vs_ddp.sh: trains the same MLP (about 25M parameters)
either with zshard ZeRO-2 or with torch DDP (gloo) + torch AdamW, and prints
"RESULT <mode> <median step seconds> <peak RSS MiB>" per rank."""
import os
import resource
import statistics
import sys
import time

import torch

STEPS, MICRO = 12, 16


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2048, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 2048),
                               torch.nn.GELU(), torch.nn.Linear(2048, 2048))


def main(mode):
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    net = model()
    if mode == "zshard":
        import zshard
        engine, _, _, _ = zshard.initialize(model=net, config={
            "train_micro_batch_size_per_gpu": MICRO, "steps_per_print": 1000,
            "optimizer": {"type": "AdamW", "params": {"lr": 1e-4, "weight_decay": 0.01}},
            "zero_optimization": {"stage": 2, "reduce_bucket_size": 5e6}})
        forward, backward, step = engine, engine.backward, engine.step
    else:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{os.environ['BENCH_DDP_PORT']}",
                                rank=rank, world_size=world)
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        opt = torch.optim.AdamW(ddp.parameters(), lr=1e-4, weight_decay=0.01)
        forward = ddp

        def backward(loss):
            loss.backward()

        def step():
            opt.step()
            opt.zero_grad(set_to_none=True)
    gen = torch.Generator().manual_seed(rank)
    times = []
    for _ in range(STEPS):
        x, y = torch.randn(MICRO, 2048, generator=gen), torch.randn(MICRO, 2048, generator=gen)
        t0 = time.perf_counter()
        backward(torch.nn.functional.mse_loss(forward(x), y))
        step()
        times.append(time.perf_counter() - t0)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT {mode} {statistics.median(times[2:]):.4f} {peak_mib:.0f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
