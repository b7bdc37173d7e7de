"""DeepSpeed's deepspeed.comm subset: the process group of the job zlaunch
(or PMIx, Slurm, torchrun variables) describes, over zshard's Gloo backend.
CPU tensors; the sum is the only reduction."""
from zshard import _C

_group = None


class ReduceOp:
    SUM = "sum"


def init_distributed(dist_backend=None, **unused):
    """Joins the job's process group (idempotent). dist_backend is accepted
    for DeepSpeed compatibility; zshard picks Gloo for host tensors."""
    global _group
    if _group is None:
        _group = _C.Group()
    return _group


def is_initialized():
    return _group is not None


def get_rank():
    return init_distributed().rank


def get_world_size():
    return init_distributed().size


def barrier():
    init_distributed().barrier()


def all_reduce(tensor, op=ReduceOp.SUM):
    import torch.utils.dlpack

    if op != ReduceOp.SUM:
        raise _C.ZshardError(f"all_reduce: op {op!r} is not supported; only ReduceOp.SUM")
    if not tensor.is_contiguous():
        raise _C.ZshardError("all_reduce: expected a contiguous tensor (call .contiguous())")
    init_distributed().all_reduce(torch.utils.dlpack.to_dlpack(tensor))
    return tensor
