"""Worker of bench/zero_vs_ddp.sh: trains the same MLP (about 50M parameters,
fp32) with zshard ZeRO-1, 2 or 3 or with torch DDP (gloo) + torch AdamW,
and prints per rank

  RESULT <mode> <median step s> <whole-run peak MiB> <training peak MiB>
         <baseline MiB> <model-state formula MiB>

The baseline is this process's RSS after importing torch (and zshard) and
before building anything; the training peak is the peak RSS from the end
of setup (the kernel's high-water mark, reset through /proc/self/clear_refs)
to the end of training. The formula is the model state the method must hold:
for fp32 training with Ψ parameters on N ranks (fp32 parameters are their
own master weights), ZeRO-1 4Ψ + 4Ψ + 8Ψ/N, ZeRO-2 4Ψ + 12Ψ/N (+ its two
reduce buckets), ZeRO-3 12Ψ/N + the two reduce buckets + two layers gathered
at once, DDP 4Ψ params + 4Ψ grads + 4Ψ buckets + 8Ψ Adam moments."""
import os
import resource
import statistics
import sys
import time

import torch

STEPS, MICRO, WIDTH, BUCKET = 10, 8, 4096, 5_000_000


def rss_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(WIDTH, WIDTH), torch.nn.GELU(), torch.nn.Linear(WIDTH, WIDTH),
                               torch.nn.GELU(), torch.nn.Linear(WIDTH, WIDTH))


def formula_mib(mode, psi, world):
    mib = 1024 * 1024
    # fp32 parameters are their own master weights: 8 bytes of Adam state per shard element
    if mode == "zshard1":
        return (8 * psi + 8 * psi / world) / mib
    if mode == "zshard2":
        return (4 * psi + 12 * psi / world + 2 * 4 * BUCKET) / mib
    if mode.startswith("zshard3"):
        return (12 * psi / world + 2 * 4 * BUCKET + 2 * 4 * (WIDTH * WIDTH + WIDTH)) / mib
    return 20 * psi / mib


def stage3_prefetch(mode):
    """zshard3: one layer gathered ahead, two at most (the formula's
    working set); zshard3np: every gather on demand."""
    layer = WIDTH * WIDTH + WIDTH
    if mode == "zshard3np":
        return {"stage3_prefetch_bucket_size": 0, "stage3_max_reuse_distance": 0}
    return {"stage3_prefetch_bucket_size": layer, "stage3_max_live_parameters": 2 * layer,
            "stage3_max_reuse_distance": 0}


def setup(mode, net, rank, world):
    """(forward, backward, step) of the method."""
    if mode.startswith("zshard"):
        import zshard
        engine, _, _, _ = zshard.initialize(model=net, config={
            "train_micro_batch_size_per_gpu": MICRO, "steps_per_print": 1000,
            "optimizer": {"type": "AdamW", "params": {"lr": 1e-4, "weight_decay": 0.01}},
            "zero_optimization": {"stage": int(mode[6]), "reduce_bucket_size": BUCKET, "overlap_comm": True,
                                  "stage3_param_persistence_threshold": 0, **stage3_prefetch(mode)}})
        return engine, engine.backward, engine.step
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{os.environ['BENCH_DDP_PORT']}",
                            rank=rank, world_size=world)
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-4, weight_decay=0.01)

    def step():
        opt.step()
        opt.zero_grad(set_to_none=True)

    return ddp, lambda loss: loss.backward(), step


def main(mode):
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if mode.startswith("zshard"):
        import zshard  # noqa: F401  (part of the baseline)
    baseline = rss_mib("VmRSS")
    net = model()
    psi = sum(p.numel() for p in net.parameters())
    forward, backward, step = setup(mode, net, rank, world)
    gen = torch.Generator().manual_seed(rank)
    data = [(torch.randn(MICRO, WIDTH, generator=gen), torch.randn(MICRO, WIDTH, generator=gen))
            for _ in range(STEPS)]
    reset_peak()
    times = []
    for x, y in data:
        t0 = time.perf_counter()
        backward(torch.nn.functional.mse_loss(forward(x), y))
        step()
        times.append(time.perf_counter() - t0)
    train_peak = rss_mib("VmHWM")
    whole_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT {mode} {statistics.median(times[2:]):.4f} {whole_peak:.0f} {train_peak:.0f} {baseline:.0f} "
          f"{formula_mib(mode, psi, world):.0f} psi={psi}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
