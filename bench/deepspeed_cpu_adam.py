"""Peer for bench/optim_cpu: DeepSpeed's DeepSpeedCPUAdam (its AVX C++ op,
adamw_mode) on one fp32 tensor of N elements (argv[1]) with the same
hyperparameters and threads (argv[3]). Prints `<elements/s> deepspeed-<version>`,
or nothing when DeepSpeed (or its op build) is not available. Run with
DeepSpeed on PYTHONPATH (bench/optim_cpu sources $DSPEER/env_ds.sh)."""
import os
import sys
import time

import torch


def main():
    n = int(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else torch.get_num_threads()
    torch.set_num_threads(threads)
    stdout = os.dup(1)
    os.dup2(2, 1)  # DeepSpeed logs to stdout; only the result goes there
    import deepspeed
    from deepspeed.ops.adam import DeepSpeedCPUAdam
    p = torch.nn.Parameter(torch.randn(n))
    p.grad = torch.randn(n)
    opt = DeepSpeedCPUAdam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, adamw_mode=True)
    opt.step()  # allocate state
    best = float("inf")
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    sys.stdout.flush()
    os.dup2(stdout, 1)
    print(f"{n / best:.6e} deepspeed-{deepspeed.__version__}", flush=True)


if __name__ == "__main__":
    main()
