"""DeepSpeed's deepspeed.comm: torch.distributed over the job zshard runs in.

init_distributed() brings up torch.distributed's default process group on
the job's ranks (gloo for CPU tensors, nccl when torch sees a GPU) unless
the script already did, so a script's own torch.distributed calls (metrics,
DistributedSampler, barrier) work beside the engine. MASTER_ADDR and
MASTER_PORT come from the launcher (zlaunch gives torch a port of its own,
apart from zshard's store); where nothing set them (srun with PMIx, one task
per GPU) rank 0 picks a free port and publishes it in zshard's job store.
The collectives are torch.distributed's, so every reduction and dtype its
backend takes works; AVG on gloo is a SUM divided by the world size.
"""
import datetime
import os
import socket

import torch
import torch.distributed as dist

from zshard import _C

ReduceOp = dist.ReduceOp

_DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)


def _rendezvous_address(topo, timeout):
    """Where torch's store is: zlaunch's MASTER_ADDR/MASTER_PORT (a port of
    torch's own) or torchrun's agent store; otherwise MASTER_PORT may be the
    port zshard's own store took, so rank 0 picks a free port and shares it
    with its host through zshard's job store."""
    launcher_port = topo["source"] == "zlaunch" or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    if launcher_port and os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT"):
        return os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]
    if topo["rank"] == 0:
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        _C.job_store_set("torch/master", f"{socket.gethostname()} {port}".encode())
    host, port = _C.job_store_get("torch/master", timeout.total_seconds()).decode().split()
    return host, port


def init_distributed(dist_backend=None, auto_mpi_discovery=True, distributed_port=None, verbose=True,
                     timeout=_DEFAULT_TIMEOUT, init_method=None, dist_init_required=None, config=None,
                     rank=-1, world_size=-1):
    """DeepSpeed's init_distributed: torch.distributed's default group on the
    job's ranks (idempotent; an existing default group is kept). `timeout`
    bounds torch's collectives; `dist_backend` defaults to nccl with a GPU,
    else gloo. rank/world_size, when given, must match the job's."""
    if dist.is_initialized() or dist_init_required is False:
        return
    topo = _C.topology()
    for name, given, job in (("rank", rank, topo["rank"]), ("world_size", world_size, topo["world_size"])):
        if given not in (-1, None) and given != job:
            raise _C.ZshardError(f"init_distributed({name}={given}): this process is {name} {job} of the job")
    backend = dist_backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if init_method is None:
        host, port = _rendezvous_address(topo, timeout)
        if distributed_port is not None and not os.environ.get("MASTER_PORT"):
            port = str(distributed_port)
        init_method = f"tcp://{host}:{port}"
    dist.init_process_group(backend, init_method=init_method, rank=topo["rank"], world_size=topo["world_size"],
                            timeout=timeout)


def is_initialized():
    return dist.is_initialized()


def _group():
    init_distributed()
    return None  # the default group


def get_rank(group=None):
    _group()
    return dist.get_rank(group)


def get_world_size(group=None):
    _group()
    return dist.get_world_size(group)


def get_local_rank():
    return _C.topology()["local_rank"]


def barrier(group=None):
    _group()
    dist.barrier(group)


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """torch's all_reduce; AVG where the backend lacks it (gloo) is a SUM
    divided by the group's size."""
    _group()
    if op == ReduceOp.AVG and dist.get_backend(group) == "gloo":
        work = dist.all_reduce(tensor, ReduceOp.SUM, group)
        tensor.div_(dist.get_world_size(group))
        return work
    return dist.all_reduce(tensor, op, group, async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    _group()
    return dist.all_gather(tensor_list, tensor, group, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    _group()
    return dist.all_gather_into_tensor(output_tensor, input_tensor, group, async_op)


def reduce_scatter_tensor(output_tensor, input_tensor, op=ReduceOp.SUM, group=None, async_op=False):
    _group()
    return dist.reduce_scatter_tensor(output_tensor, input_tensor, op, group, async_op)


def broadcast(tensor, src, group=None, async_op=False):
    _group()
    return dist.broadcast(tensor, src, group, async_op)


def new_group(ranks=None, **kwargs):
    _group()
    return dist.new_group(ranks, **kwargs)
