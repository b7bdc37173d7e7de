"""A worker for test_stage3.py, run under zlaunch: ZeRO-3 prefetch on a
stack of linear layers and an `extra` layer used in step 4 only (a branch
every rank takes), with an eval pass before step 2. Compared on rank 0
with single-process torch AdamW; with prefetch on, every steady pass takes
all runs but its first from a prefetch or a kept buffer. Prints
"PREFETCH MATCH" and saves the 16-bit weights to OUT_DIR/model.bin.
argv: on|off|diverge|diverge-late OUT_DIR. diverge: in step 3 only rank 0
runs `extra`, first; every rank must fail at once naming module and ranks,
not hang (prefetching then: the pass follows the recorded order
elsewhere). diverge-late: rank 0 runs `extra` last, while rank 1 goes on
to its backward (one gradient bucket, so no reduction is waited for)."""
import os
import sys

import torch
import torch.nn as nn

import zshard

LAYERS, WIDTH, STEPS, MICRO = 6, 16, 8, 3
RUN = WIDTH * WIDTH + WIDTH  # one layer's run of parameters


class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS))
        self.extra = nn.Linear(WIDTH, WIDTH)

    def forward(self, x, use_extra=False, extra_first=False):
        if use_extra and extra_first:
            x = self.extra(x)
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return self.extra(x) if use_extra and not extra_first else x


def build():
    torch.manual_seed(0)
    return Stack()


def batch(step, rank):
    return torch.randn(MICRO, WIDTH, generator=torch.Generator().manual_seed(100 * step + rank))


def uses_extra(mode, step, rank):
    return step == 4 if not mode.startswith("diverge") else (step == 3 and rank == 0)


def main(mode, out):
    model = build()
    prefetch = mode != "off"
    engine, _, _, _ = zshard.initialize(model=model, config={
        "train_micro_batch_size_per_gpu": MICRO, "optimizer": {"type": "AdamW", "params": {"lr": 1e-2, "weight_decay": 0.01}},
        "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0,
                              "reduce_bucket_size": 10**8 if mode == "diverge-late" else RUN,
                              "stage3_prefetch_bucket_size": 2 * RUN if prefetch else 0,
                              "stage3_max_live_parameters": 4 * RUN,
                              "stage3_max_reuse_distance": 10**9 if prefetch else 0,
                              "stage3_gather_16bit_weights_on_model_save": True}})
    rank, world, fetcher = engine.global_rank, engine.world_size, engine._fetcher
    for step in range(STEPS):
        if step == 2:
            with torch.no_grad():
                engine.eval()
                engine(batch(99, rank))
                engine.train()
        before = dict(fetcher.stats)
        try:
            loss = engine(batch(step, rank), uses_extra(mode, step, rank), mode == "diverge").pow(2).mean()
            engine.backward(loss)
        except zshard.ZshardError as e:
            assert mode.startswith("diverge") and step == 3, e
            text = str(e)
            assert "ran different modules" in text and "rank 0 parameters" in text and "rank 1 " in text, text
            print(f"DIVERGE REFUSED {text.split(' on this rank')[0]}", flush=True)
            return 0
        engine.step()
        taken = {k: fetcher.stats[k] - before[k] for k in before}
        if prefetch and step in (1, 3, 6):  # steady passes: only the first run is fetched on demand
            assert taken["on_demand"] == 1 and taken["prefetched"] > 0, (step, taken)
        if not prefetch:
            assert taken["prefetched"] == taken["kept"] == 0, (step, taken)
        assert fetcher.peak_live_bytes <= 4 * RUN * 4 + 4 * RUN, fetcher.peak_live_bytes  # max_live (+1 run on demand)
    assert not mode.startswith("diverge"), "ranks ran different modules unnoticed"
    assert engine.save_16bit_model(out, "model.bin")
    if rank != 0:
        return 0
    ref = build()
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.01)
    for step in range(STEPS):
        opt.zero_grad()
        for r in range(world):
            (ref(batch(step, r), uses_extra(mode, step, r)).pow(2).mean() / world).backward()
        for p in ref.parameters():  # an unused parameter's gradient counts as zeros (DeepSpeed's, zshard's)
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        opt.step()
    saved = torch.load(os.path.join(out, "model.bin"))
    worst = max(((saved[k].float() - v).abs().max() / v.abs().max()).item() for k, v in ref.state_dict().items())
    print(f"PREFETCH {'MATCH' if worst < 1e-5 else 'MISMATCH'} {worst:.3g} {fetcher.stats}", flush=True)
    return 0 if worst < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
