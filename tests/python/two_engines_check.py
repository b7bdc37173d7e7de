"""A worker for test_deepspeed_api.py: two engines in one process, as a
GAN's generator and discriminator (each its own model, optimizer and
stage), trained alternately and checkpointed apart; on rank 0 compared with
single-process torch (two AdamW) on the same batches. Prints "OK two_engines"."""
import os
import shutil
import sys
import tempfile
import warnings

import torch

import zshard

STEPS = 10


def models():
    torch.manual_seed(0)
    gen = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    disc = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    return gen, disc


def data(world):
    g = torch.Generator().manual_seed(9)
    return [(torch.randn(2, 4, generator=g), torch.randn(2, 3, generator=g)) for _ in range(STEPS * world)]


def d_loss(disc, fake, real):
    return disc(real).mean() - disc(fake.detach()).mean()


def g_loss(disc, fake):
    return disc(fake).mean()


def main():
    topo = zshard.topology()
    rank, world = topo["rank"], topo["world_size"]
    gen, disc = models()
    cfg = lambda stage: {"train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": stage}}
    g_engine, _, _, _ = zshard.initialize(model=gen, optimizer=torch.optim.AdamW(gen.parameters(), lr=1e-2),
                                          config=cfg(2))
    d_engine, _, _, _ = zshard.initialize(model=disc, optimizer=torch.optim.AdamW(disc.parameters(), lr=2e-2),
                                          config=cfg(1))
    batches = data(world)
    warnings.simplefilter("ignore")  # zero_grad() below discards on purpose
    for t in range(STEPS):
        z, real = batches[t * world + rank]
        fake = g_engine(z)
        # As DeepSpeed's GAN example: the generator's backward also reaches
        # the discriminator's parameters; zero_grad() drops that before D's step.
        d_engine.zero_grad()
        d_engine.backward(d_loss(d_engine, fake, real))
        d_engine.step()
        g_engine.zero_grad()
        g_engine.backward(g_loss(d_engine, fake))
        g_engine.step()
    root = os.path.join(tempfile.gettempdir(), f"zshard-two-engines-{os.environ.get('ZSHARD_RUN_ID', 'x')}")
    g_engine.save_checkpoint(os.path.join(root, "g"))
    d_engine.save_checkpoint(os.path.join(root, "d"))
    for engine, name in ((g_engine, "g"), (d_engine, "d")):  # each loads its own, apart from the other
        path, _ = engine.load_checkpoint(os.path.join(root, name))
        assert path == os.path.join(root, name, f"global_step{STEPS}"), path
    zshard.comm.barrier()
    if rank == 0:
        shutil.rmtree(root)
    if rank == 0:
        rgen, rdisc = models()
        gopt, dopt = torch.optim.AdamW(rgen.parameters(), lr=1e-2), torch.optim.AdamW(rdisc.parameters(), lr=2e-2)
        for t in range(STEPS):
            dopt.zero_grad()
            gopt.zero_grad()
            fakes = [rgen(batches[t * world + r][0]) for r in range(world)]
            for r in range(world):
                (d_loss(rdisc, fakes[r], batches[t * world + r][1]) / world).backward()
            dopt.step()
            for r in range(world):
                (g_loss(rdisc, fakes[r]) / world).backward()
            gopt.step()
        worst = max(((p - q).abs().max() / q.abs().max()).item()
                    for a, b in ((gen, rgen), (disc, rdisc)) for p, q in zip(a.parameters(), b.parameters()))
        assert worst < 1e-5, worst
    print("OK two_engines")


if __name__ == "__main__":
    sys.exit(main())  # argv[1] ("two_engines") names the case for the test runner
