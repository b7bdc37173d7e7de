"""Peer for bench/optim_cpu: torch.optim.AdamW on one fp32 tensor of N
elements (argv[1]), CPU, the same hyperparameters, best of STEPS
(argv[2]) steps on THREADS (argv[3]) threads. Prints elements/s and the
version. Its helpers time bench/deepspeed_cpu_adam.py's peer the same way."""
import sys
import time

import torch


def parameter(argv):
    """(a parameter of N elements with a gradient, N, STEPS), torch's
    threads set."""
    n = int(argv[1])
    steps = int(argv[2]) if len(argv) > 2 else 5
    torch.set_num_threads(int(argv[3]) if len(argv) > 3 else torch.get_num_threads())
    p = torch.nn.Parameter(torch.randn(n))
    p.grad = torch.randn(n)
    return p, n, steps


def elements_per_second(opt, n, steps):
    """The best of `steps` optimizer steps, after one that allocates the state."""
    opt.step()
    best = float("inf")
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main():
    p, n, steps = parameter(sys.argv)
    opt = torch.optim.AdamW([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    print(f"{elements_per_second(opt, n, steps):.6e} {torch.__version__}")


if __name__ == "__main__":
    main()
