"""deepspeed.zero: Init shards a model as it is built (zshard.zero_init);
GatheredParameters and register_external_parameter act at ZeRO stage 3 and
on Init's parameters (zshard.stage3) and pass through below it."""
import contextlib

from zshard import stage3
from zshard.zero_init import Init

__all__ = ["GatheredParameters", "Init", "register_external_parameter"]


def GatheredParameters(params, modifier_rank=None, fwd_module=None, enabled=True):
    """The parameters whole inside the block (stage 3; below it they are)."""
    if not enabled:
        return contextlib.nullcontext()
    return stage3.gathered_parameters(params, modifier_rank)


def register_external_parameter(module, parameter):
    stage3.register_external_parameter(module, parameter)
