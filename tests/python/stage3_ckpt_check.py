"""A worker for test_stage3.py: a ZeRO-3 checkpoint resumes on another
stage and rank count. `save STAGE DIR`: trains 4 steps at STAGE, saves a
checkpoint and (rank 0) the whole fp32 weights beside it; `load STAGE DIR`:
a fresh model at STAGE loads it and its weights must equal them; then one
more step runs. Prints "CKPT OK"."""
import os
import sys

import torch

import zshard


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.LayerNorm(10), torch.nn.Linear(10, 3))


def engine_for(stage):
    model = build()
    engine, _, _, _ = zshard.initialize(model=model, model_parameters=model.parameters(), config={
        "train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}},
        "zero_optimization": {"stage": stage, "stage3_param_persistence_threshold": 0}})
    return model, engine


def train(engine, steps):
    for t in range(steps):
        g = torch.Generator().manual_seed(t * 7 + engine.global_rank)
        engine.backward(engine(torch.randn(2, 6, generator=g)).pow(2).mean())
        engine.step()


def whole(engine, model):
    """Every parameter's whole fp32 master (collective, any stage: what
    deepspeed.utils.safe_get_full_fp32_param returns)."""
    return [engine.full_param_state(p, "master") for p in model.parameters()]


def main(phase, stage, directory):
    model, engine = engine_for(stage)
    record = os.path.join(directory, "weights.pt")
    if phase == "save":
        train(engine, 4)
        engine.save_checkpoint(directory)
        weights = whole(engine, model)
        if engine.global_rank == 0:
            torch.save(weights, record)
    else:
        path, _ = engine.load_checkpoint(directory)
        assert path, "nothing loaded"
        weights = whole(engine, model)
        saved = torch.load(record)
        assert all(torch.equal(a, b) for a, b in zip(weights, saved)), "the loaded weights differ"
        train(engine, 1)
    zshard.comm.barrier()
    print("CKPT OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
