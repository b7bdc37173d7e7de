"""zshard.initialize under zlaunch with 1, 2 and 4 CPU workers: ZeRO-0/1/2 in
fp32 match single-process torch AdamW on the full batch; misuse gets clear
errors; a DeepSpeed-style script runs with only the import changed."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ZLAUNCH = os.environ.get("ZLAUNCH", os.path.join(HERE, "..", "..", "build", "zlaunch"))


def zlaunch(nproc, *args, timeout=240):
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable)
    return subprocess.run([ZLAUNCH, "--nproc-per-node", str(nproc), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize("world", [1, 2, 4])
@pytest.mark.parametrize("stage", [0, 1, 2])
def test_zero_matches_torch_adamw(world, stage):
    r = zlaunch(world, os.path.join(HERE, "train_check.py"), "--stage", str(stage))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[rank 0] MATCH" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("case, nproc, message", [
    ("twice", 1, "initialize(): parameter weight is already trained by another engine"),
    ("non_leaf", 1, "parameter 0 (shape (2, 4)) is not a leaf tensor"),
    ("different_weights", 2, "parameters differ across ranks: rank 1's initial values are not rank 0's"),
    ("unseeded", 2, "[rank 1] NO ERROR"),
    ("client_optimizer", 1, "optimizer: given both as initialize(optimizer=...) and in the config's"),
    ("scheduler_twice", 1, "lr_scheduler: given both as initialize(lr_scheduler=...) and in the config's"),
    ("client_rmsprop", 1, "optimizer: a client RMSprop has no fused twin in zshard (Adam, AdamW, SGD, FusedAdam); set "
                          "\"zero_allow_untested_optimizer\": true"),
    ("client_amsgrad", 1, "optimizer: AdamW(amsgrad=True) is not supported by zshard's fused optimizer"),
    ("bad_key", 1, 'zero_optimisation: unknown key; did you mean "zero_optimization"?'),
    ("both_configs", 1, "config: given both to initialize(config=...) and as args.deepspeed_config (/tmp/ds.json)"),
    ("mpu", 1, "initialize(): mpu=: model parallelism (mpu) is not supported"),
    ("collate_alone", 1, "initialize(): collate_fn= is for training_data=, which is not given"),
    ("unknown_kwarg", 1, "initialize(): unexpected keyword argument model_params="),
    ("param_group_setting", 1, "model_parameters[0]: momentum: not a per-group setting of "),
    ("param_group_add", 1, "optimizer.add_param_group(): the engine's parameters are fixed at initialize()"),
])
def test_bad_use_gets_a_clear_error(case, nproc, message):
    r = zlaunch(nproc, os.path.join(HERE, "bad_use.py"), case)
    assert message in r.stdout, r.stdout + r.stderr


def test_add_config_arguments_and_deepspeed_config_on_the_command_line(tmp_path):
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"train_micro_batch_size_per_gpu": 3,
                                  "optimizer": {"type": "SGD", "params": {"lr": 0.1}}}))
    r = zlaunch(2, os.path.join(HERE, "deepspeed_args.py"), "--deepspeed", "--deepspeed_config", str(config))
    assert r.returncode == 0 and r.stdout.count("ARGS OK micro 3") == 2, r.stdout + r.stderr


def test_deepspeed_script_runs_with_only_the_import_changed(tmp_path):
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({
        "train_micro_batch_size_per_gpu": 64, "gradient_clipping": 1.0,
        "optimizer": {"type": "Adam", "params": {"lr": 1e-2}},
        "scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": 0, "warmup_max_lr": 1e-2,
                                                     "warmup_num_steps": 5}},
        "zero_optimization": {"stage": 2}, "steps_per_print": 10, "wall_clock_breakdown": True}))
    r = zlaunch(2, os.path.join(HERE, "deepspeed_style.py"), "--deepspeed_config", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "global_steps 30" in r.stdout, r.stdout
    # DeepSpeed-style progress lines every steps_per_print steps, from rank 0 only, with timings.
    reports = [line for line in r.stderr.splitlines() if "[zshard] step=" in line]
    assert len(reports) == 3 and all(line.startswith("[rank 0]") for line in reports), r.stderr
    assert "lr=1.000e-02" in reports[-1] and "samples/sec=" in reports[-1] and "forward=" in reports[-1], reports


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_example_converges(tmp_path, precision):
    config = {"train_micro_batch_size_per_gpu": 8, "gradient_clipping": 1.0,
              "optimizer": {"type": "AdamW", "params": {"lr": 3e-3, "weight_decay": 0.01}},
              "zero_optimization": {"stage": 2, "reduce_bucket_size": 20000}}
    if precision == "bf16":
        config["bf16"] = {"enabled": True}
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(config))
    example = os.path.join(HERE, "..", "..", "examples", "train_gpt.py")
    r = zlaunch(2, "--config", str(path), example, "--steps", "60")
    assert r.returncode == 0, r.stdout + r.stderr
    done = [line for line in r.stdout.splitlines() if "done:" in line]
    assert done, r.stdout
    first, last = (float(v) for v in done[0].split("loss ")[1].split(" (")[0].split(" -> "))
    assert last < 0.6 * first, done[0]


def test_comm_beside_an_engine():
    r = zlaunch(3, os.path.join(HERE, "comm_check.py"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("COMM OK rank") == 3, r.stdout


def test_fp16_with_dynamic_loss_scaling_converges_and_logs_skips():
    r = zlaunch(2, os.path.join(HERE, "fp16_check.py"))
    assert r.returncode == 0, r.stdout + r.stderr
    line = [l for l in r.stdout.splitlines() if "FP16 loss" in l][0]
    first, last = (float(v) for v in line.split("loss ")[1].split(" scale")[0].split(" -> "))
    assert last < first / 5, line
    skipped = int(line.split("skipped ")[1])
    assert skipped >= 1, line  # 2^24 is too large a start: the scale must come down
    assert r.stderr.count("gradient overflow (inf/nan): skipping step") == 2 * skipped, r.stderr[-2000:]
