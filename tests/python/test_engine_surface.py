"""DeepSpeed's engine accessors and backward/step arguments, and
torch.distributed beside zshard, under zlaunch with CPU workers
(engine_surface_check.py, torch_dist_check.py) and without a launcher."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ZLAUNCH = os.environ.get("ZLAUNCH", os.path.join(HERE, "..", "..", "build", "zlaunch"))


def run_on_two_workers(script, case):
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    r = subprocess.run([ZLAUNCH, "--nproc-per-node", "2", os.path.join(HERE, script), case],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and r.stdout.count(f"OK {case}") == 2, r.stdout + r.stderr


@pytest.mark.parametrize("case", ["accessors", "sum_over_gas", "batch_and_save", "client_schedule"])
def test_engine_surface(case):
    run_on_two_workers("engine_surface_check.py", case)


@pytest.mark.parametrize("case", ["own", "by_initialize"])
def test_torch_distributed_beside_zshard(case):
    run_on_two_workers("torch_dist_check.py", case)


def test_torch_distributed_without_a_launcher():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZSHARD_", "MASTER_", "RANK", "WORLD_SIZE",
                                                                        "LOCAL_RANK", "PMIX", "SLURM"))}
    r = subprocess.run([sys.executable, os.path.join(HERE, "torch_dist_check.py"), "by_initialize"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "OK by_initialize 0" in r.stdout, r.stdout + r.stderr
