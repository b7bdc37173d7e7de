"""The zshard package as a user imports it: build info, config validation
with errors that name the key, and the topology from the environment."""
import json

import pytest

import zshard


def test_version_and_build_report():
    assert zshard.__version__.count(".") == 2
    report = zshard.build_report()
    for component in ("CUDA:", "NCCL:", "PMIx: yes", "Gloo: yes"):
        assert component in report


def test_check_config_summarizes_a_valid_config():
    cfg = {"train_batch_size": 16, "train_micro_batch_size_per_gpu": 4,
           "zero_optimization": {"stage": 2}, "activation_checkpointing": {"partition_activations": False}}
    summary, warnings = zshard.check_config(json.dumps(cfg), world_size=2)
    assert "train_batch_size 16 = micro 4 x accumulation 2 x world 2" in summary
    assert warnings == ["activation_checkpointing: accepted but not acted on by zshard: use torch.utils.checkpoint "
                        "in the model"]


def test_bad_config_raises_config_error_with_the_cpp_message():
    with pytest.raises(zshard.ConfigError) as err:
        zshard.check_config(json.dumps({"train_batch_size": 8, "zero_optimization": {"stage": 4}}))
    assert str(err.value) == "zero_optimization.stage: expected 0..3, got 4"
    assert isinstance(err.value, ValueError)


def test_topology_from_torchrun_variables(monkeypatch):
    for name, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511"}.items():
        monkeypatch.setenv(name, value)
    for name in ("ZSHARD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    t = zshard.topology()
    assert (t["source"], t["rank"], t["world_size"], t["master_port"]) == ("torchrun", 1, 2, 29511)


def test_malformed_variable_raises_zshard_error(monkeypatch):
    monkeypatch.setenv("RANK", "7")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("ZSHARD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(zshard.ZshardError, match=r'RANK: expected an integer in 0..1, got "7"'):
        zshard.topology()
