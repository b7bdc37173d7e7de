"""zshard's DeepSpeed-API suite: one client script per pattern DeepSpeed's
documentation teaches (tests/python/deepspeed_api/), each written against
`import deepspeed` (zshard's alias under zlaunch), run unchanged on 2 CPU
workers, and compared on rank 0 with a single-process torch reference of
the same recipe: fp32 weights within 1e-5 relative after 10+ steps."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(HERE, "deepspeed_api")
ZLAUNCH = os.environ.get("ZLAUNCH", os.path.join(HERE, "..", "..", "build", "zlaunch"))


def run_client(script, *args, config=None):
    command = [ZLAUNCH, "--nproc-per-node", "2"]
    if config is not None:
        command += ["--config", config]
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    r = subprocess.run(command + [os.path.join(CLIENTS, script), *args], capture_output=True, text=True,
                       timeout=300, env=env)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("client", ["param_groups", "hf_optimizer_scheduler", "training_data",
                                    "torch_distributed_metrics"])
def test_client_matches_torch(client):
    rc, out = run_client(f"{client}.py")
    assert rc == 0 and f"[rank 0] {client} MATCH" in out, out


def test_local_rank_client_matches_float64_lamb(tmp_path):
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"train_micro_batch_size_per_gpu": 3, "zero_optimization": {"stage": 1},
                                  "optimizer": {"type": "Lamb", "params": {"lr": 1e-2, "weight_decay": 0.01}}}))
    rc, out = run_client("local_rank_args.py", "--deepspeed", "--deepspeed_config", str(config))
    assert rc == 0 and "[rank 0] local_rank_args MATCH" in out, out


@pytest.mark.parametrize("kind, stage", [("adagrad", 1), ("rmsprop", 2)])
def test_an_untested_torch_optimizer_steps_the_shard_like_torch(tmp_path, kind, stage):
    ckpt = str(tmp_path / "ckpt")
    rc, out = run_client("untested_optimizer.py", kind, str(stage), ckpt)
    assert rc == 0 and f"[rank 0] untested_optimizer {kind} MATCH" in out, out
    r = subprocess.run([ZLAUNCH, "--nproc-per-node", "1", os.path.join(CLIENTS, "untested_optimizer.py"), "elsewhere",
                        kind, str(stage), ckpt], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, ZSHARD_PYTHON=sys.executable))
    assert r.returncode == 0 and "RESUME ELSEWHERE REFUSED" in r.stdout, r.stdout + r.stderr


def test_two_engines_client_matches_torch():
    """A GAN's generator and discriminator as two engines (two_engines_check.py)."""
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    r = subprocess.run([ZLAUNCH, "--nproc-per-node", "2", os.path.join(HERE, "two_engines_check.py"), "two_engines"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and r.stdout.count("OK two_engines") == 2, r.stdout + r.stderr
