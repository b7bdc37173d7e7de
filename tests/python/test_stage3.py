"""ZeRO stage 3 under zlaunch on CPU workers (stage3_check.py): parameters
sharded and gathered per module, tied embeddings, a frozen layer,
accumulation and clipping, against single-process torch AdamW."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ZLAUNCH = os.environ.get("ZLAUNCH", os.path.join(HERE, "..", "..", "build", "zlaunch"))


@pytest.mark.parametrize("world, threshold, built", [(1, 0, "whole"), (2, 0, "whole"), (3, 0, "whole"),
                                                    (4, 0, "whole"), (2, 100000, "whole"), (1, 0, "init"),
                                                    (3, 0, "init"), (4, 100000, "init"),
                                                    (2, 0, "init-stage2")])
def test_stage3_matches_torch(tmp_path, world, threshold, built):
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    r = subprocess.run([ZLAUNCH, "--nproc-per-node", str(world), os.path.join(HERE, "stage3_check.py"),
                        str(threshold), str(tmp_path / "out"), built], capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0 and f"[rank 0] STAGE3 MATCH" in r.stdout, r.stdout + r.stderr


def test_a_stage3_checkpoint_resumes_on_other_stages_and_rank_counts(tmp_path):
    """3 on 2 ranks -> 2 on 3 ranks -> 3 on 1 rank, and 2 on 2 -> 3 on 3."""
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)

    def run(world, *args):
        r = subprocess.run([ZLAUNCH, "--nproc-per-node", str(world), os.path.join(HERE, "stage3_ckpt_check.py"),
                            *map(str, args)], capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0 and r.stdout.count("CKPT OK") == world, r.stdout + r.stderr

    run(2, "save", 3, tmp_path / "a")
    run(3, "load", 2, tmp_path / "a")
    run(1, "load", 3, tmp_path / "a")
    run(2, "save", 2, tmp_path / "b")
    run(3, "load", 3, tmp_path / "b")


def test_ranks_running_different_modules_fail_at_once_naming_them():
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    r = subprocess.run([ZLAUNCH, "--nproc-per-node", "2", os.path.join(HERE, "stage3_branch_check.py")],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and "BRANCH REFUSED a" in r.stdout and "BRANCH REFUSED b" in r.stdout, \
        r.stdout + r.stderr


def test_gathered_parameters_and_external_parameters_at_stage3():
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    r = subprocess.run([ZLAUNCH, "--nproc-per-node", "2", os.path.join(HERE, "stage3_gathered_check.py")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and r.stdout.count("GATHERED OK") == 2, r.stdout + r.stderr
