"""Peer for bench/optim_gpu: torch.optim.AdamW(fused=True) on one fp32 CUDA
tensor of N elements (argv[1]). Prints elements/s (best of argv[2] steps)
and torch's version."""
import sys

import torch


def main():
    n = int(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    p = torch.nn.Parameter(torch.randn(n, device="cuda"))
    p.grad = torch.randn(n, device="cuda")
    opt = torch.optim.AdamW([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, fused=True)
    opt.step()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        opt.step()
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3)
    print(f"{n / best:.6e} {torch.__version__}")


if __name__ == "__main__":
    main()
