"""deepspeed.zero: GatheredParameters and register_external_parameter act
at ZeRO stage 3 (zshard.stage3) and pass through below it. Init builds the
model as usual: zshard shards it at initialize(), so at stage 3 the whole
model must fit one rank's memory once (said with a warning)."""
import contextlib
import json
import warnings

from zshard import stage3


class Init(contextlib.ContextDecorator):
    """Constructs the model as usual; zshard shards it at initialize()."""

    def __init__(self, module=None, data_parallel_group=None, mem_efficient_linear=True, remote_device=None,
                 pin_memory=False, config_dict_or_path=None, config=None, enabled=True, dtype=None, mpu=None,
                 **kwargs):
        settings = config_dict_or_path if config_dict_or_path is not None else config
        if enabled and settings is not None:
            if not isinstance(settings, dict):
                with open(settings, encoding="utf-8") as f:
                    settings = json.load(f)
            if settings.get("zero_optimization", {}).get("stage") == 3:
                warnings.warn("deepspeed.zero.Init: zshard builds the model whole and shards it at initialize() "
                              "(no partitioning at construction yet): the whole model must fit one rank's "
                              "memory once")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def GatheredParameters(params, modifier_rank=None, fwd_module=None, enabled=True):
    """The parameters whole inside the block (stage 3; below it they are)."""
    if not enabled:
        return contextlib.nullcontext()
    return stage3.gathered_parameters(params, modifier_rank)


def register_external_parameter(module, parameter):
    stage3.register_external_parameter(module, parameter)
