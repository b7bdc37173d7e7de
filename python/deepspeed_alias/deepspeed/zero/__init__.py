"""deepspeed.zero: Init and GatheredParameters are no-ops below ZeRO stage 3,
which zshard does not run yet (a stage 3 config is refused by initialize)."""
import contextlib
import json

from zshard import _C


class Init(contextlib.ContextDecorator):
    """Constructs the model as usual (stage 0-2 keep whole parameters)."""

    def __init__(self, module=None, data_parallel_group=None, mem_efficient_linear=True, remote_device=None,
                 pin_memory=False, config_dict_or_path=None, config=None, enabled=True, dtype=None, mpu=None,
                 **kwargs):
        settings = config_dict_or_path if config_dict_or_path is not None else config
        if enabled and settings is not None:
            if not isinstance(settings, dict):
                with open(settings, encoding="utf-8") as f:
                    settings = json.load(f)
            if settings.get("zero_optimization", {}).get("stage") == 3:
                raise _C.ConfigError("deepspeed.zero.Init: ZeRO stage 3 (partitioned parameters) is not "
                                     "supported yet; use stage 2")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@contextlib.contextmanager
def GatheredParameters(params, modifier_rank=None, fwd_module=None, enabled=True):
    """Below stage 3 every rank holds whole parameters: nothing to gather."""
    yield
