"""deepspeed.moe.utils helpers DeepSpeed's examples import. zshard has no
MoE layers: parameters are never expert parameters, and a parameter marked
as one (DeepSpeed's allreduce=False) is refused by name."""
from zshard import _C


def is_moe_param(param):
    return hasattr(param, "allreduce") and not param.allreduce


def split_params_into_different_moe_groups_for_optimizer(param_groups, max_group_size=178956971):
    groups = param_groups if isinstance(param_groups, (list, tuple)) else [param_groups]
    for group in groups:
        params = group["params"] if isinstance(group, dict) else [group]
        if any(is_moe_param(p) for p in params):
            raise _C.ConfigError("deepspeed.moe: expert (MoE) parameters are not supported by zshard")
    return param_groups
