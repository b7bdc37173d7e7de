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


@pytest.mark.parametrize("case", ["accessors", "sum_over_gas", "batch_and_save", "client_schedule", "no_sync",
                                  "stage0_grads", "lr_kwargs"])
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


MNIST_CONFIG = {"train_micro_batch_size_per_gpu": 8, "dataloader_drop_last": True, "steps_per_print": 1000,
                "optimizer": {"type": "Adam", "params": {"lr": 0.001}}, "zero_optimization": {"stage": 2}}


def _mnist_config(tmp_path):
    import json
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(MNIST_CONFIG))
    return str(path)


def test_mnist_style_script_under_zlaunch(tmp_path):
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    r = subprocess.run([ZLAUNCH, "--nproc-per-node", "2", os.path.join(HERE, "mnist_style.py"), "--deepspeed",
                        "--deepspeed_config", _mnist_config(tmp_path)],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0 and "[rank 0] MNIST MATCH" in r.stdout and "steps 12" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("agent", [False, True], ids=["rank0_store", "agent_store"])
def test_mnist_style_script_in_a_torchrun_style_environment(tmp_path, agent):
    """RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT as torchrun sets them (Debian's
    torchrun itself crashes on Python 3.11), no zshard variable: MASTER_PORT is
    torch's, held by rank 0's process group or, as under torchrun, by the
    agent's store that the workers join (TORCHELASTIC_USE_AGENT_STORE);
    zshard's store is found through it."""
    import datetime
    import socket

    import torch.distributed as dist
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agent_store = (dist.TCPStore("127.0.0.1", port, None, True, datetime.timedelta(seconds=60),
                                 wait_for_workers=False) if agent else None)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZSHARD_", "PMIX", "SLURM", "TORCHELASTIC"))}
    if agent:
        base.update(TORCHELASTIC_USE_AGENT_STORE="True", TORCHELASTIC_RESTART_COUNT="0",
                    TORCHELASTIC_RUN_ID="test-run")
    procs = []
    for rank in range(2):
        env = dict(base, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, os.path.join(HERE, "mnist_style.py"), "--deepspeed",
                                       "--deepspeed_config", _mnist_config(tmp_path)],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env))
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "MNIST MATCH" in outs[0] and "steps 12" in outs[0], outs
    if agent:  # the agent's store held MASTER_PORT all along: zshard never bound it
        assert agent_store.add("still-serving", 1) == 1


def test_import_deepspeed_resolves_to_zshards_alias_under_zlaunch():
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    script = os.path.join(HERE, "deepspeed_import.py")
    r = subprocess.run([ZLAUNCH, "--nproc-per-node", "2", script], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0 and r.stdout.count("DEEPSPEED IMPORT OK") == 2, r.stdout + r.stderr
    assert "import deepspeed: zshard's alias" in r.stderr, r.stderr
    off = subprocess.run([ZLAUNCH, "--nproc-per-node", "1", "--deepspeed-alias", "off", script],
                         capture_output=True, text=True, timeout=120, env=env)
    assert off.returncode != 0 and "No module named 'deepspeed'" in off.stdout + off.stderr, off.stdout + off.stderr


def test_an_installed_deepspeed_is_never_shadowed(tmp_path):
    real = tmp_path / "site" / "deepspeed"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\n")
    script = tmp_path / "which.py"
    script.write_text("import deepspeed\nprint('REAL' if getattr(deepspeed, 'REAL', False) else 'ALIAS')\n")
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable, PYTHONPATH=str(tmp_path / "site"))
    runs = {mode: subprocess.run([ZLAUNCH, "--nproc-per-node", "1", "--deepspeed-alias", mode, str(script)],
                                 capture_output=True, text=True, timeout=60, env=env) for mode in ("auto", "on")}
    assert "[rank 0] REAL" in runs["auto"].stdout, runs["auto"].stdout + runs["auto"].stderr
    assert "[rank 0] ALIAS" in runs["on"].stdout, runs["on"].stdout + runs["on"].stderr  # asked for explicitly


def test_zlaunch_passes_local_rank_to_scripts_that_parse_it(tmp_path):
    """DeepSpeed's launcher gives --local_rank=N; zlaunch does when the
    script names the option (auto), always (on), or never (--no_local_rank)."""
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    parses = os.path.join(HERE, "local_rank_arg.py")
    plain = tmp_path / "plain.py"
    plain.write_text("import argparse\np = argparse.ArgumentParser()\np.add_argument('--tag')\n"
                     "print('PLAIN', p.parse_args().tag)\n")

    def run(*args):
        r = subprocess.run([ZLAUNCH, "--nproc-per-node", "2", *map(str, args)], capture_output=True, text=True,
                           timeout=60, env=env)
        return r.returncode, r.stdout + r.stderr

    rc, out = run(parses, "--tag", "x")
    assert rc == 0 and "[rank 0] LOCAL_RANK_ARG 0 tag=x" in out and "[rank 1] LOCAL_RANK_ARG 1 tag=x" in out, out
    rc, out = run("--no_local_rank", parses)
    assert rc == 0 and out.count("LOCAL_RANK_ARG -1") == 2, out
    rc, out = run(plain, "--tag", "y")  # auto: the plain script's argparse never sees --local_rank
    assert rc == 0 and out.count("PLAIN y") == 2, out
    rc, out = run("--local-rank-arg", "on", plain)
    assert rc != 0 and "unrecognized arguments: --local_rank=0" in out, out
