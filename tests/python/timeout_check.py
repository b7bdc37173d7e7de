"""A worker for test_faults.py: rank 1 leaves the training early (exit 0
after initialize(), or a long sleep before its step); rank 0 steps, so its
first collective waits for rank 1 until the collective timeout (zlaunch
--collective-timeout, or the config's zshard.timeouts.collective) ends it.
argv: exit0 | stall  [CONFIG_TIMEOUT_SECONDS]"""
import sys
import time

import torch

import zshard


def main(kind, config_timeout):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    config = {"train_micro_batch_size_per_gpu": 1, "optimizer": {"type": "SGD", "params": {"lr": 0.1}},
              "zero_optimization": {"stage": 2}}
    if config_timeout:
        config["zshard"] = {"timeouts": {"collective": float(config_timeout)}}
    engine, _, _, _ = zshard.initialize(model=model, model_parameters=model.parameters(), config=config)
    if engine.global_rank == 1:
        if kind == "exit0":
            print("rank 1 leaves early", flush=True)
            return 0
        time.sleep(120)
    engine.backward(engine(torch.randn(1, 4)).sum())
    engine.step()
    print("STEPPED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
