"""deepspeed.utils: the whole fp32 weights and optimizer state of a sharded
parameter (collective: every rank calls them for the same parameter).
safe_get_full_grad: at stage 0, after the boundary's backward, the averaged
gradient (p.grad, as in DeepSpeed); at stages 1-2 zshard reduces each
gradient into the step that consumes it, so there is none, and it says so."""
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
    engine = _engine(param)
    if engine.zero_optimization_stage() == 0:
        return None if param.grad is None else param.grad.detach().float().clone()
    raise _C.ZshardError(f"deepspeed.utils.safe_get_full_grad: not supported at ZeRO stage "
                         f"{engine.zero_optimization_stage()}; zshard reduces each gradient into the step that "
                         "consumes it, so no full gradient exists between backward and step (at stage 0 it is "
                         "p.grad after the boundary's backward)")
