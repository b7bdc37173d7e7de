"""A client optimizer (DeepSpeed's initialize(optimizer=...)) turned into
the config's "optimizer" block and parameter groups: zshard then steps its
own fused optimizer with the same hyperparameters on each rank's shard.

torch.optim.AdamW, Adam (L2 decay: DeepSpeed's Adam with adam_w_mode false)
and SGD, or a callable that builds one from the parameters; another class
runs on the shard as it is (untested_optimizer.py) when the config allows. Groups may
differ in lr, weight_decay and (Adam/AdamW) betas and eps; a setting the
fused optimizer lacks (amsgrad, maximize, another optimizer class) is
refused naming it.
"""
import torch

from zshard import _C

_TYPES = {torch.optim.AdamW: "AdamW", torch.optim.Adam: "Adam", torch.optim.SGD: "SGD"}
# Settings every group must share, and those each group has, per type, as
# the config block names them.
_SHARED = {"AdamW": (), "Adam": (), "SGD": ("momentum", "dampening", "nesterov")}
_PER_GROUP = {"AdamW": ("lr", "weight_decay", "betas", "eps"), "Adam": ("lr", "weight_decay", "betas", "eps"),
              "SGD": ("lr", "weight_decay")}
_REFUSED_WHEN_TRUE = ("amsgrad", "maximize")
# Group keys with no effect on the numbers (torch's kernel choices, a
# scheduler's bookkeeping).
_PASSIVE = {"params", "name", "foreach", "fused", "capturable", "differentiable", "initial_lr"}


def _instance(optimizer, parameters):
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if callable(optimizer):
        built = optimizer(parameters)
        if isinstance(built, torch.optim.Optimizer):
            return built
    raise _C.ConfigError(f"optimizer: expected a torch optimizer or a callable building one from the "
                         f"parameters, got {type(optimizer).__name__}")


def _kind(optimizer):
    """The fused optimizer type, or None for a class without a fused twin."""
    if hasattr(optimizer, "zshard_optimizer_type"):  # deepspeed.ops.adam's FusedAdam, DeepSpeedCPUAdam
        return optimizer.zshard_optimizer_type()[0]
    return _TYPES.get(type(optimizer))


def _untested(optimizer, groups):
    """The config block and groups of a client the fused optimizer cannot
    be (untested_optimizer.py steps it): the engine keeps only the fp32
    master weights (SGD without momentum holds nothing else)."""
    block = {"type": "SGD", "params": {"lr": float(groups[0].get("lr", 0.0)), "momentum": 0.0}}
    return block, [{"params": g["params"]} for g in groups], optimizer, True


def _check_groups(kind, groups):
    for key in _REFUSED_WHEN_TRUE:
        if any(g.get(key) for g in groups):
            raise _C.ConfigError(f"optimizer: {kind}({key}=True) is not supported by zshard's fused optimizer")
    for key in _SHARED[kind]:
        values = [g[key] for g in groups if key in g]
        if any(v != values[0] for v in values):
            raise _C.ConfigError(f"optimizer: parameter groups with different {key} ({values}) are not "
                                 f"supported; {kind} groups may differ in {', '.join(_PER_GROUP[kind])}")
    unknown = sorted(set().union(*groups) - set(_SHARED[kind]) - set(_PER_GROUP[kind]) - _PASSIVE
                     - set(_REFUSED_WHEN_TRUE))
    if unknown:
        raise _C.ConfigError(f"optimizer: {kind} settings {', '.join(unknown)} are not supported by zshard")


def as_config(optimizer, parameters):
    """(the config's "optimizer" block, parameter groups for initialize,
    the optimizer instance, whether it is stepped as it is on the shard:
    a class without a fused twin) of a client optimizer; `parameters` are
    what a callable is given."""
    optimizer = _instance(optimizer, parameters)
    kind = _kind(optimizer)
    groups = [g for g in optimizer.param_groups if g["params"]]
    if kind is None:
        return _untested(optimizer, groups)
    if optimizer.state:
        raise _C.ConfigError(f"optimizer: the client {type(optimizer).__name__} has already stepped (its state is "
                             "not empty) and zshard's fused optimizer would start its moments afresh; pass a "
                             "fresh optimizer, or resume with engine.load_checkpoint()")
    _check_groups(kind, groups)
    first = groups[0]
    params = {"lr": first["lr"], "weight_decay": first["weight_decay"]}
    if kind == "SGD":
        params.update(momentum=first["momentum"], dampening=first["dampening"], nesterov=first["nesterov"])
    else:
        params.update(betas=list(first["betas"]), eps=first["eps"])
    if kind == "Adam":
        params["adam_w_mode"] = False
    if hasattr(optimizer, "zshard_optimizer_type"):
        params.update(optimizer.zshard_optimizer_type()[1])
    block = {"type": kind, "params": params}
    return block, [{k: g[k] for k in ("params",) + _PER_GROUP[kind] if k in g} for g in groups], optimizer, False
