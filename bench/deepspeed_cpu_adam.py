"""Peer for bench/optim_cpu: DeepSpeed's DeepSpeedCPUAdam (its AVX C++ op,
adamw_mode) on one fp32 tensor of N elements (argv[1]) with the same
hyperparameters, steps and threads as torch_adamw.py. Prints
`<elements/s> deepspeed-<version>`, or nothing when DeepSpeed (or its op
build) is not available. Run with DeepSpeed on PYTHONPATH (bench/optim_cpu
sources $DSPEER/env_ds.sh)."""
import os
import sys

from torch_adamw import elements_per_second, parameter


def main():
    p, n, steps = parameter(sys.argv)
    stdout = os.dup(1)
    os.dup2(2, 1)  # DeepSpeed logs to stdout; only the result goes there
    import deepspeed
    from deepspeed.ops.adam import DeepSpeedCPUAdam
    opt = DeepSpeedCPUAdam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, adamw_mode=True)
    rate = elements_per_second(opt, n, steps)
    sys.stdout.flush()
    os.dup2(stdout, 1)
    print(f"{rate:.6e} deepspeed-{deepspeed.__version__}", flush=True)


if __name__ == "__main__":
    main()
