"""ZeRO-Offload under zlaunch on CPU workers (offload_check.py): the
optimizer state offloaded whole, half (ratio 0.5) and at stage 3 with the
parameter shards too gives the bits of the run that keeps it with the
model, and matches single-process torch AdamW; checkpoints move between
offloaded and non-offloaded runs on other rank counts."""
import os
import subprocess
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ZLAUNCH = os.environ.get("ZLAUNCH", os.path.join(HERE, "..", "..", "build", "zlaunch"))


def run(world, stage, offload, out, first=0, last=8, load="-", save="-", worlds_before=None):
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    if worlds_before:
        env["WORLDS_BEFORE"] = str(worlds_before)
    r = subprocess.run([ZLAUNCH, "--nproc-per-node", str(world), os.path.join(HERE, "offload_check.py"), str(stage),
                        offload, str(first), str(last), str(out), str(load), str(save)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and "[rank 0] OFFLOAD MATCH" in r.stdout, r.stdout + r.stderr
    return torch.load(out / "state.pt")


def same_bits(a, b):
    return all(torch.equal(x, y) for name in a for x, y in zip(a[name], b[name]))


@pytest.mark.parametrize("stage, world", [(1, 2), (2, 2), (3, 2), (1, 3), (2, 3), (3, 3)])
def test_offloaded_runs_equal_the_run_on_the_device_and_torch(tmp_path, stage, world):
    base = run(world, stage, "none", tmp_path / "none")
    for offload in ["cpu", "cpu-half"] + (["cpu-params"] if stage == 3 else []):
        assert same_bits(run(world, stage, offload, tmp_path / offload), base), offload


def test_checkpoints_move_between_offloaded_and_device_runs_on_other_rank_counts(tmp_path):
    """Offloaded on 2 ranks -> on the device on 3 -> offloaded (stage 3,
    parameters too) and on the device on 2: one format; each run continues
    the same training (torch's reference over the rank counts each step
    ran on), and the last two end with the same bits."""
    run(2, 2, "cpu", tmp_path / "a", 0, 4, save=tmp_path / "ck1")
    run(3, 2, "none", tmp_path / "b", 4, 8, load=tmp_path / "ck1", save=tmp_path / "ck2", worlds_before="2,2,2,2")
    before = "2,2,2,2,3,3,3,3"
    offloaded = run(2, 3, "cpu-params", tmp_path / "c", 8, 10, load=tmp_path / "ck2", worlds_before=before)
    on_device = run(2, 3, "none", tmp_path / "d", 8, 10, load=tmp_path / "ck2", worlds_before=before)
    assert same_bits(offloaded, on_device)


def test_a_client_torch_optimizer_is_offloaded_and_an_untested_one_refused():
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    for kind, want in (("torch", "CLIENT OK"), ("untested", "CLIENT REFUSED")):
        r = subprocess.run([ZLAUNCH, "--nproc-per-node", "2", os.path.join(HERE, "offload_client_check.py"), kind],
                           capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 0 and r.stdout.count(want) == 2, r.stdout + r.stderr
        if kind == "untested":
            assert "zero_optimization.offload_optimizer" in r.stdout, r.stdout
