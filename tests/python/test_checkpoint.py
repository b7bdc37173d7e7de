"""Checkpoints through zlaunch: save on 2 ranks, resume on 1-4 and retrace
the uninterrupted run; fp16 loss scaling and the lr schedule continue
exactly; a rank killed mid-save leaves the previous checkpoint loadable;
corrupt, truncated and mismatched checkpoints are refused by name; the
consolidated state dict loads strictly into the plain model."""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_check  # noqa: E402  (the worker's model and data)

HERE = os.path.dirname(os.path.abspath(__file__))
ZLAUNCH = os.environ.get("ZLAUNCH", os.path.join(HERE, "..", "..", "build", "zlaunch"))
WORKER = os.path.join(HERE, "ckpt_check.py")


def run(nproc, *args, env=None):
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable, **(env or {}))
    return subprocess.run([ZLAUNCH, "--nproc-per-node", str(nproc), WORKER, *map(str, args)],
                          capture_output=True, text=True, timeout=240, env=env)


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def relative_error(got, want):
    return max(((got[k] - want[k]).abs().max() / want[k].abs().max().clamp(min=1e-30)).item() for k in want)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 2-rank run that saves at step 6 and trains 10 more steps."""
    base = tmp_path_factory.mktemp("fp32")
    ok(run(2, "--phase", "train", "--dir", base / "ckpt", "--record", base / "ref.pt"))
    return base


@pytest.mark.parametrize("world, stage", [(2, 2), (1, 2), (3, 2), (4, 2), (3, 1)])
def test_resume_on_any_rank_count_retraces_the_run(saved, tmp_path, world, stage):
    record = tmp_path / "resumed.pt"
    r = ok(run(world, "--phase", "resume", "--dir", saved / "ckpt", "--record", record, "--stage", stage))
    assert f"at global step 6 on {world} ranks" in r.stdout, r.stdout
    ref, got = torch.load(saved / "ref.pt"), torch.load(record)
    assert relative_error(got["final"], ref["final"]) < 1e-6
    assert got["lrs"] == ref["lrs"] and got["global_steps"] == ref["global_steps"] == 16
    assert torch.equal(got["rng"], ref["rng"])  # rank 0's RNG state came back


def test_fp16_loss_scaler_and_schedule_continue_exactly(tmp_path):
    ok(run(2, "--phase", "train", "--precision", "fp16", "--dir", tmp_path / "ckpt", "--record", tmp_path / "ref.pt"))
    ref = torch.load(tmp_path / "ref.pt")
    assert ref["skipped_before"] >= 1 and len(set(ref["scales"])) > 1, ref  # the scaler is mid-flight
    for world in (2, 3):
        record = tmp_path / f"resumed{world}.pt"
        ok(run(world, "--phase", "resume", "--precision", "fp16", "--dir", tmp_path / "ckpt", "--record", record))
        got = torch.load(record)
        assert got["start"] == ref["start"], (got["start"], ref["start"])  # scale, lr, skipped, hysteresis
        if world == 2:
            # Same ranks, same reduction order: the same overflows, scales and lrs, bit for bit.
            assert got["scales"] == ref["scales"] and got["lrs"] == ref["lrs"], (got["scales"], ref["scales"])
            assert got["skipped"] == ref["skipped"]
            assert relative_error(got["final"], ref["final"]) == 0
        # On 3 ranks each rank's fp16 gradients differ, so overflows (and hence the
        # scale's path) may legitimately differ from here on.


def test_killed_rank_mid_save_leaves_the_previous_checkpoint(saved, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(saved / "ckpt", ckpt)
    r = run(2, "--phase", "resume", "--dir", ckpt, "--record", tmp_path / "x.pt", "--save-at", "0",
            env={"ZSHARD_FAULT": "checkpoint.mid_shard@1", "CKPT_SAVE_AFTER_RESUME": "1"})
    assert r.returncode != 0 and "ZSHARD_FAULT: killing this process at checkpoint.mid_shard" in r.stderr, r.stderr
    assert (ckpt / "latest").read_text() == "global_step6"
    assert not (ckpt / "global_step16" / "manifest.zshard").exists()
    record = tmp_path / "resumed.pt"
    ok(run(2, "--phase", "resume", "--dir", ckpt, "--record", record))
    assert relative_error(torch.load(record)["final"], torch.load(saved / "ref.pt")["final"]) < 1e-6
    r = run(1, "--phase", "resume", "--dir", ckpt, "--tag", "global_step16", "--record", record)
    assert "has no manifest.zshard: its save did not complete" in r.stdout + r.stderr, r.stdout + r.stderr


def damaged_copy(saved, tmp_path, damage):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(saved / "ckpt", ckpt)
    shard = next((ckpt / "global_step6").glob("shard-r1-of-2.*.bin"))
    damage(shard)
    return ckpt, shard


def flip_middle_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 100])


@pytest.mark.parametrize("damage, message", [(flip_middle_byte, "is corrupt: block 0"), (truncate, "is truncated")])
def test_damaged_shard_is_refused_by_name(saved, tmp_path, damage, message):
    ckpt, shard = damaged_copy(saved, tmp_path, damage)
    r = run(2, "--phase", "resume", "--dir", ckpt, "--record", tmp_path / "x.pt")
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert f'checkpoint file "{shard}" {message}' in out and "load_checkpoint of" in out, out
    assert "RECORDED" not in out


@pytest.mark.parametrize("args, message", [
    (["--hidden", "32"], "is of another model: parameter '0.weight' [24, 16] in the checkpoint is "
                         "'0.weight' [32, 16] in this model"),
    (["--optimizer", "SGD"], "is of another optimizer: it holds AdamW state (master, exp_avg, exp_avg_sq)"),
    (["--no-buffer"], "the checkpoint has buffers or frozen parameters this model does not: calibration; "
                      "nothing was loaded"),
])
def test_mismatched_checkpoint_is_refused(saved, tmp_path, args, message):
    r = run(2, "--phase", "resume", "--dir", saved / "ckpt", "--record", tmp_path / "x.pt", *args)
    assert r.returncode != 0 and message in r.stdout + r.stderr, r.stdout + r.stderr


def test_weights_only_load_into_another_optimizer(saved, tmp_path):
    ok(run(2, "--phase", "resume", "--dir", saved / "ckpt", "--record", tmp_path / "x.pt",
           "--optimizer", "SGD", "--no-optimizer-states"))
    got = torch.load(tmp_path / "x.pt")
    assert got["start"][3] == 6  # global_steps comes back with the weights


def test_without_the_scheduler_state_the_schedule_restarts(saved, tmp_path):
    ok(run(2, "--phase", "resume", "--dir", saved / "ckpt", "--record", tmp_path / "x.pt", "--no-scheduler-state"))
    got, ref = torch.load(tmp_path / "x.pt"), torch.load(saved / "ref.pt")
    assert ref["start"][1] > 0 and got["start"][1] == 0.0  # WarmupDecayLR from warmup_min_lr 0


def read_safetensors(path):
    """An independent reader of the safetensors layout (the package is not in Debian)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, h in header.items():
        begin, end = h["data_offsets"]
        assert h["dtype"] == "F32"
        out[name] = torch.from_numpy(numpy.frombuffer(raw[8 + n + begin:8 + n + end], dtype="<f4").copy()
                                     ).reshape(h["shape"])
    return out


@pytest.mark.parametrize("out_name", ["model.pt", "model.safetensors"])
def test_consolidated_weights_load_strictly_and_agree(saved, tmp_path, out_name):
    out = tmp_path / out_name
    r = subprocess.run([sys.executable, "-m", "zshard.consolidate", str(saved / "ckpt"), str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    state = read_safetensors(out) if out_name.endswith(".safetensors") else torch.load(out)
    ref = torch.load(saved / "ref.pt")["at_save"]
    def plain_model():
        m = torch.nn.Sequential(torch.nn.Linear(16, 24), torch.nn.Tanh(), torch.nn.Linear(24, 4))
        m.register_buffer("calibration", torch.zeros(4))
        m.register_parameter("frozen", torch.nn.Parameter(torch.zeros(3), requires_grad=False))
        return m
    plain, saved_model = plain_model(), plain_model()
    plain.load_state_dict(state, strict=True)
    saved_model.load_state_dict(ref, strict=True)
    assert torch.equal(plain.frozen, torch.ones(3))
    x = torch.randn(5, 16)
    assert torch.equal(plain(x), saved_model(x))


def consolidate_peak_rss_mb(*args):
    """Runs `python -m zshard.consolidate ARGS` and returns its peak RSS in MB."""
    wrapper = ("import resource, runpy, sys\n"
               "sys.argv = ['zshard.consolidate'] + sys.argv[1:]\n"
               "try:\n    runpy.run_module('zshard.consolidate', run_name='__main__')\n"
               "except SystemExit:\n    pass\n"
               "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    r = subprocess.run([sys.executable, "-c", wrapper, *map(str, args)], capture_output=True, text=True, timeout=180)
    assert "PEAK_RSS_KB" in r.stdout, r.stdout + r.stderr
    return int(r.stdout.split("PEAK_RSS_KB")[1]) / 1024, r


def test_consolidate_streams_one_tensor_at_a_time(tmp_path):
    # 16 hidden layers of 768 x 768: 38 MB of weights, the largest tensor 2.4 MB.
    ok(run(1, "--phase", "train", "--dir", tmp_path / "ckpt", "--record", tmp_path / "ref.pt",
           "--hidden", "768", "--layers", "16", "--save-at", "1", "--bucket", "10000000"))
    baseline, _ = consolidate_peak_rss_mb("--help")
    for out in ("big.pt", "big.safetensors"):
        peak, r = consolidate_peak_rss_mb(tmp_path / "ckpt", tmp_path / out)
        assert "wrote" in r.stdout, r.stdout + r.stderr
        print(f"{out}: peak RSS {peak:.0f} MB, baseline {baseline:.0f} MB")
        assert peak - baseline < 16, (out, peak, baseline)  # far below the 38 MB of weights
    state = torch.load(tmp_path / "big.pt")
    ref = torch.load(tmp_path / "ref.pt")["at_save"]
    assert all(torch.equal(state[k], ref[k]) for k in ref) and state.keys() == ref.keys()


def test_consolidate_to_bf16(saved, tmp_path):
    out = tmp_path / "bf16.pt"
    r = subprocess.run([sys.executable, "-m", "zshard.consolidate", str(saved / "ckpt"), str(out), "--dtype", "bf16"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    state, ref = torch.load(out), torch.load(saved / "ref.pt")["at_save"]
    assert state["0.weight"].dtype == torch.bfloat16
    assert torch.equal(state["0.weight"], ref["0.weight"].to(torch.bfloat16))


def test_consolidate_names_a_bad_directory(tmp_path):
    r = subprocess.run([sys.executable, "-m", "zshard.consolidate", str(tmp_path), str(tmp_path / "o.pt")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and f'"{tmp_path}" has no `latest` file' in r.stderr, r.stderr
