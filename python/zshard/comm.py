"""DeepSpeed's deepspeed.comm: torch.distributed over the job zshard runs in.

init_distributed() brings up torch.distributed's default process group on
the job's ranks (gloo for CPU tensors, nccl when torch sees a GPU) unless
the script already did, so a script's own torch.distributed calls (metrics,
DistributedSampler, barrier) work beside the engine. MASTER_ADDR and
under torchrun's or Slurm's variables MASTER_ADDR/MASTER_PORT are torch's
(torchrun's agent store), and zshard's store is found through torch's;
under zlaunch, srun with PMIx or alone, rank 0 serves torch's store on a
port the kernel picks and publishes it in zshard's job store (zlaunch's
MASTER_PORT stays for scripts that call init_process_group themselves).
The collectives are torch.distributed's, so every reduction and dtype its
backend takes works; AVG on gloo is a SUM divided by the world size.
"""
import datetime
import functools
import os
import socket
import sys
import time

import torch
import torch.distributed as dist

from zshard import _C

ReduceOp = dist.ReduceOp

_DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)


# Where MASTER_ADDR:MASTER_PORT (or the address Slurm's variables give) is
# torch's: torchrun's agent store or the default group's. zshard's job store
# then travels through torch's store (share_job_store).
_TORCH_OWNS_MASTER = ("torchrun", "slurm")
_shared = {"joined": False, "torch_store": None, "groups": 0}


def _published_store(topo, timeout, port):
    """torch's store for the job where zshard chooses its address (zlaunch,
    PMIx, one process): rank 0 serves it on `port` (0: one the kernel picks
    as it binds, so no other process can take it in between) and publishes
    where through zshard's job store; the others connect."""
    key = f"torch/master/{_shared['groups']}"
    if topo["rank"] == 0:
        store = dist.TCPStore("0.0.0.0", port, None, True, timeout, wait_for_workers=False)
        host = os.environ.get("MASTER_ADDR") if topo["source"] == "zlaunch" else None
        _C.job_store_set(key, f"{host or socket.gethostname()} {store.port}".encode())
        return store
    host, served = _C.job_store_get(key, timeout.total_seconds()).decode().split()
    return dist.TCPStore(host, int(served), None, False, timeout)


def _torch_store(topo, timeout):
    """torch's store at the job's master address: the default group's when
    it is up, else a client of torchrun's agent store, else (torch's group
    left down: dist_init_required=False) one rank 0 serves itself."""
    if dist.is_initialized() and hasattr(dist.distributed_c10d, "_get_default_store"):
        return dist.distributed_c10d._get_default_store()
    serve = (topo["rank"] == 0 and not dist.is_initialized()
             and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True")
    store = dist.TCPStore(topo["master_addr"], topo["master_port"], None, serve, timeout, wait_for_workers=False)
    _shared["torch_store"] = store  # rank 0 may be serving it: keep it alive
    return store


def share_job_store(topo, timeout=_DEFAULT_TIMEOUT):
    """Under torchrun's or Slurm's variables MASTER_PORT is torch's, so
    zshard's job store does not take it: rank 0 serves it on a free port
    (ZSHARD_JOB_TOKEN, or a fresh token) and publishes the address in
    torch's store, where every rank finds it. Once per process, before the
    job store's first use; nothing to do under zlaunch or PMIx."""
    if _shared["joined"] or topo["source"] not in _TORCH_OWNS_MASTER:
        return
    store = _torch_store(topo, timeout)
    key = (f"zshard/job_store/{os.environ.get('TORCHELASTIC_RUN_ID', '')}/"
           f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}")
    if topo["rank"] == 0:
        store.set(key, _C.serve_job_store(os.environ.get("ZSHARD_JOB_TOKEN", "")))
    _C.join_job_store(store.get(key).decode())
    _shared["joined"] = True


def init_distributed(dist_backend=None, auto_mpi_discovery=True, distributed_port=None, verbose=True,
                     timeout=_DEFAULT_TIMEOUT, init_method=None, dist_init_required=None, config=None,
                     rank=-1, world_size=-1):
    """DeepSpeed's init_distributed: torch.distributed's default group on the
    job's ranks (idempotent; an existing default group is kept). `timeout`
    bounds torch's collectives; `dist_backend` defaults to nccl with a GPU,
    else gloo. rank/world_size, when given, must match the job's."""
    topo = _C.topology()
    if dist.is_initialized() or dist_init_required is False:
        share_job_store(topo, timeout)
        return
    for name, given, job in (("rank", rank, topo["rank"]), ("world_size", world_size, topo["world_size"])):
        if given not in (-1, None) and given != job:
            raise _C.ZshardError(f"init_distributed({name}={given}): this process is {name} {job} of the job")
    backend = dist_backend or ("nccl" if torch.cuda.is_available() else "gloo")
    where = {"rank": topo["rank"], "world_size": topo["world_size"], "timeout": timeout}
    if init_method is None and topo["source"] in _TORCH_OWNS_MASTER:
        init_method = f"tcp://{topo['master_addr']}:{topo['master_port']}"
    if init_method is not None:
        dist.init_process_group(backend, init_method=init_method, **where)
    else:
        _shared["groups"] += 1
        dist.init_process_group(backend, store=_published_store(topo, timeout, distributed_port or 0), **where)
    share_job_store(topo, timeout)


def _logged(op, tensor_arg, per_rank=False):
    """Puts a synchronous call into the comms log (comms_logger) and the
    trace like the engine's own collectives: `op` in DeepSpeed's names, the
    size that of the positional argument `tensor_arg` (the whole buffer;
    `per_rank`: one rank's part of it)."""
    def wrap(fn):
        @functools.wraps(fn)
        def logged(*args, **kwargs):
            if not (_C.comms_enabled() or _C.trace_recording()) or kwargs.get("async_op"):
                return fn(*args, **kwargs)
            begin = time.monotonic_ns() // 1000
            out = fn(*args, **kwargs)
            tensor = args[tensor_arg] if len(args) > tensor_arg else None
            nbytes = tensor.numel() * tensor.element_size() if isinstance(tensor, torch.Tensor) else 0
            world = dist.get_world_size()
            _C.comms_record(op, nbytes * (world if per_rank else 1), world, begin, time.monotonic_ns() // 1000)
            return out
        return logged
    return wrap


def log_summary(show_straggler=False):
    """DeepSpeed's comm.log_summary(): the comms_logger table (rank 0; the
    engine prints it at exit too)."""
    if _C.topology()["rank"] == 0:
        print(_C.comms_table(), file=sys.stderr, flush=True)


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


@_logged("barrier", 99)
def barrier(group=None):
    _group()
    dist.barrier(group)


@_logged("all_reduce", 0)
def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """torch's all_reduce; AVG where the backend lacks it (gloo) is a SUM
    divided by the group's size."""
    _group()
    if op == ReduceOp.AVG and dist.get_backend(group) == "gloo":
        work = dist.all_reduce(tensor, ReduceOp.SUM, group)
        tensor.div_(dist.get_world_size(group))
        return work
    return dist.all_reduce(tensor, op, group, async_op)


@_logged("all_gather", 1, per_rank=True)
def all_gather(tensor_list, tensor, group=None, async_op=False):
    _group()
    return dist.all_gather(tensor_list, tensor, group, async_op)


@_logged("all_gather", 0)
def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    _group()
    return dist.all_gather_into_tensor(output_tensor, input_tensor, group, async_op)


@_logged("reduce_scatter", 1)
def reduce_scatter_tensor(output_tensor, input_tensor, op=ReduceOp.SUM, group=None, async_op=False):
    _group()
    return dist.reduce_scatter_tensor(output_tensor, input_tensor, op, group, async_op)


@_logged("broadcast", 0)
def broadcast(tensor, src, group=None, async_op=False):
    _group()
    return dist.broadcast(tensor, src, group, async_op)


def new_group(ranks=None, **kwargs):
    _group()
    return dist.new_group(ranks, **kwargs)
