"""Peer for bench/optim_cpu: torch.optim.AdamW on one fp32 tensor of N
elements (argv[1]), CPU, the same hyperparameters. Prints elements/s."""
import sys
import time

import torch


def main():
    n = int(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else torch.get_num_threads()
    torch.set_num_threads(threads)
    p = torch.nn.Parameter(torch.randn(n))
    p.grad = torch.randn(n)
    opt = torch.optim.AdamW([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    opt.step()  # allocate state
    best = float("inf")
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    print(f"{n / best:.6e} {torch.__version__}")


if __name__ == "__main__":
    main()
