"""The engine on what real users run, under zlaunch with CPU workers:
BatchNorm, frozen layers, per-rank branches with a per-rank loss weight,
fp32 equal to single-process torch AdamW (real_models_check.py); bf16 with
BatchNorm; unused parameters; changes behind the engine's back; and every
sample config either trains the example or is refused by check-config and
initialize() with the same message."""
import glob
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
ZLAUNCH = os.environ.get("ZLAUNCH", os.path.join(ROOT, "build", "zlaunch"))
CHECK = os.path.join(HERE, "real_models_check.py")


def zlaunch(nproc, *args, timeout=300):
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    return subprocess.run([ZLAUNCH, "--nproc-per-node", str(nproc), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("stage, clip", [(0, 0.5), (1, 0.0), (2, 0.0), (2, 0.5)])
def test_branches_frozen_batchnorm_match_torch(world, stage, clip):
    r = zlaunch(world, CHECK, "match", "--stage", str(stage), "--clip", str(clip))
    assert r.returncode == 0 and "[rank 0] MATCH" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("stage", [1, 2])
def test_parameter_groups_with_their_own_settings_match_torch(world, stage):
    r = zlaunch(world, CHECK, "match", "--stage", str(stage), "--groups")
    assert r.returncode == 0 and "[rank 0] MATCH" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("client", ["adamw", "adam", "sgd"])
def test_a_client_torch_optimizer_with_groups_matches_torch(client):
    r = zlaunch(2, CHECK, "match", "--stage", "2", "--groups", "--client", client)
    assert r.returncode == 0 and "[rank 0] MATCH" in r.stdout, r.stdout + r.stderr


def run_ok(case, stage, marker):
    """Runs a real_models_check.py case on 2 workers; both must print marker."""
    r = zlaunch(2, CHECK, case, "--stage", str(stage))
    assert r.returncode == 0 and r.stdout.count(marker) == 2, r.stdout + r.stderr


@pytest.mark.parametrize("stage", [1, 2])
def test_bf16_convnet_with_batchnorm_trains_and_evaluates(stage):
    run_ok("bf16_bn", stage, "OK bf16 loss")


@pytest.mark.parametrize("stage", [1, 2])
def test_an_unused_parameter_is_named_when_not_ignored(stage):
    r = zlaunch(2, CHECK, "unused", "--stage", str(stage))
    assert r.returncode != 0, r.stdout
    assert "rank 1 got no gradient for 2 parameter(s) in micro step 0: head_a.weight, head_a.bias" in r.stdout, \
        r.stdout + r.stderr


@pytest.mark.parametrize("stage", [1, 2])
def test_gradients_leave_autograd_as_backward_produces_them(stage):
    run_ok("handover", stage, "OK handover rank")


@pytest.mark.parametrize("stage", [1, 2])
def test_changes_behind_the_engines_back_are_caught(stage):
    run_ok("behind", stage, "OK behind rank")


def test_warnings_are_printed_once_by_rank_0(tmp_path):
    config = tmp_path / "ds.json"
    config.write_text('{"train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "SGD", "params": {"lr": 0.1}},'
                      ' "zero_optimization": {"stage": 2, "allgather_bucket_size": 5e7}, "activation_checkpointing": {}}')
    script = tmp_path / "one_step.py"
    script.write_text("import torch, zshard\n"
                      "torch.manual_seed(0)\n"
                      "model = torch.nn.Linear(4, 2)\n"
                      "engine, _, _, _ = zshard.initialize(model=model)\n"
                      "engine.backward(engine(torch.ones(2, 4)).sum())\n"
                      "engine.step()\n")
    r = zlaunch(2, "--config", str(config), str(script))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if "[zshard] warning:" in line]
    assert len(lines) == 2 and all(line.startswith("[rank 0]") for line in lines), r.stderr
    assert "allgather_bucket_size: accepted but not acted on by zshard: the all-gather runs in place" in lines[0]
    startup = [line for line in r.stderr.splitlines() if "[zshard] ZeRO stage 2," in line]
    assert len(startup) == 1 and "fp32 weights, fp32 gradients, 2 rank(s)" in startup[0], r.stderr


def _has_cuda():
    import torch
    return torch.cuda.is_available()


def _errors(check_output):
    return [line[len("error: "):] for line in check_output.splitlines() if line.startswith("error: ")]


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.json"))),
                         ids=os.path.basename)
def test_every_sample_config_trains_or_is_refused_the_same_way(path):
    check = subprocess.run([ZLAUNCH, "check-config", "--world-size", "2", path], capture_output=True, text=True)
    example = os.path.join(ROOT, "examples", "train_gpt.py")
    if check.returncode == 0:
        if "precision: fp16" in check.stdout and not _has_cuda():
            # torch's CPU kernels have no fp16 LayerNorm or matmul, which the
            # example needs: the same config trains fp16_check.py's MLP (fp16
            # weights and gradients, fp32 compute) instead.
            r = zlaunch(2, os.path.join(HERE, "fp16_check.py"), path)
            assert r.returncode == 0, r.stdout + r.stderr
            line = next(x for x in r.stdout.splitlines() if "FP16 loss" in x)
            first, last = (float(v) for v in line.split("loss ")[1].split(" scale")[0].split(" -> "))
            assert last < first, line
            return
        r = zlaunch(2, "--config", path, example, "--steps", "30")
        assert r.returncode == 0, r.stdout + r.stderr
        done = [line for line in r.stdout.splitlines() if "done:" in line]
        first, last = (float(v) for v in done[0].split("loss ")[1].split(" (")[0].split(" -> "))
        assert last < first, done[0]
        return
    assert check.returncode == 2, check.stdout + check.stderr
    errors = _errors(check.stderr)
    assert errors, check.stderr
    # initialize() with the file (no zlaunch --config, which allows "auto" for HuggingFace scripts).
    r = zlaunch(2, example, "--steps", "1", "--deepspeed_config", path)
    assert r.returncode != 0, r.stdout
    for error in errors:
        assert error in r.stdout + r.stderr, (error, r.stdout + r.stderr)


@pytest.mark.parametrize("case", ["last_batch_iteration", "tag_validation", "fp32_communication", "auto_cast",
                                  "hf_filled"])
def test_config_keys_act_at_run_time(case):
    r = zlaunch(2, os.path.join(HERE, "config_effects_check.py"), case)
    assert r.returncode == 0 and r.stdout.count(f"OK {case}") == 2, r.stdout + r.stderr
