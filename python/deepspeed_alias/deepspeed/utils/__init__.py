"""deepspeed.utils: the whole fp32 weights and optimizer state of a sharded
parameter (collective: every rank calls them for the same parameter).
safe_get_full_grad has no window in zshard (the reduced gradients are
consumed by the step that reduces them) and says so."""
from zshard import _C


def _engine(param):
    engine = getattr(param, "_zshard_owner", None)
    if engine is None:
        raise _C.ZshardError("deepspeed.utils: the tensor is not a parameter of a zshard engine")
    return engine


def safe_get_full_fp32_param(param):
    return _engine(param).full_param_state(param, "master")


def safe_get_full_optimizer_state(param, optim_state_key):
    return _engine(param).full_param_state(param, optim_state_key)


def safe_get_full_grad(param):
    raise _C.ZshardError("deepspeed.utils.safe_get_full_grad: not supported; zshard reduces each gradient into "
                         "the step that consumes it, so no full gradient exists between backward and step")
