"""DeepSpeed's zero.Init: a model constructed inside it is sharded as it is
built, so no rank ever holds the whole model, only one module's parameters
at a time on top of its shards.

When a module's outermost __init__ returns (a subclass's __init__ calling
its parent's counts once), each of its parameters not yet sharded takes
rank 0's values (a broadcast: every rank builds the same modules in the
same order), keeps 1/N of its elements on this rank and becomes an empty
placeholder with DeepSpeed's ds_shape/ds_numel. Code that changes a
parameter after its module was built (a parent's custom initialisation of
a child's weights, tying by copy) must do it inside
zero.GatheredParameters(params, modifier_rank=0), as with DeepSpeed.

initialize() at stage 3 hands the shards to the engine one parameter at a
time (hand_over: bounded by the largest parameter, never the model); below
stage 3, and for parameters the engine does not train (frozen ones), the
parameters are made whole again first (materialize).
"""
import contextlib
import ctypes
import functools
import inspect
import warnings

import torch
import torch.distributed as dist

from zshard import _C

# Init's arguments that zshard cannot honour: refused when set.
_REFUSED = {
    "data_parallel_group": "zshard shards over every rank of the job",
    "zero_param_parallel_group": "zshard shards over every rank of the job (no hpZ groups)",
    "sequence_data_parallel_group": "sequence parallelism is not supported",
    "mpu": "model parallelism is not supported",
    "param_swapper": "NVMe offload is not supported",
    "zero_quantized_weights": "quantized weights (ZeRO++) are not supported",
    "zero_quantized_nontrainable_weights": "quantized weights (ZeRO++) are not supported",
}


class Init(contextlib.ContextDecorator):
    """Modules constructed inside are sharded over the job's ranks as they
    are built (see the module's text). `module`: an already built module
    to shard now. `dtype`: the parameters' dtype before sharding.
    `enabled=False` builds as usual."""

    def __init__(self, module=None, data_parallel_group=None, mem_efficient_linear=True, remote_device=None,
                 pin_memory=False, config_dict_or_path=None, config=None, enabled=True, dtype=None, mpu=None,
                 zero_param_parallel_group=None, zero_quantized_weights=False,
                 zero_quantized_nontrainable_weights=False, sequence_data_parallel_group=None, param_swapper=None):
        given = dict(data_parallel_group=data_parallel_group, zero_param_parallel_group=zero_param_parallel_group,
                     sequence_data_parallel_group=sequence_data_parallel_group, mpu=mpu,
                     param_swapper=param_swapper, zero_quantized_weights=zero_quantized_weights,
                     zero_quantized_nontrainable_weights=zero_quantized_nontrainable_weights)
        self.enabled = enabled
        self._patched = []
        self._depth = 0
        if not enabled:
            return
        for name, value in given.items():
            if value not in (None, False):
                raise _C.ConfigError(f"zero.Init({name}=...): {_REFUSED[name]}")
        if remote_device not in (None, "none", "cpu"):
            raise _C.ConfigError(f"zero.Init(remote_device={remote_device!r}): expected None or 'cpu' "
                                 "(NVMe offload is not supported)")
        if remote_device == "cpu" or pin_memory:
            warnings.warn("zero.Init(remote_device='cpu', pin_memory=...): the shards stay on the model's device "
                          "(parameter offload is zero_optimization.offload_param's, at initialize())")
        if not mem_efficient_linear:
            warnings.warn("zero.Init(mem_efficient_linear=False): zshard takes it from the config's "
                          "zero_optimization.memory_efficient_linear at initialize()")
        del config_dict_or_path, config  # the stage is initialize()'s: below 3 the model is made whole there
        self._dtype = dtype
        from zshard import comm
        comm.init_distributed()
        self._device = (torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available()
                        else torch.device("cpu"))
        if module is not None:
            self._shard_module(module)

    def __enter__(self):
        if self.enabled:
            self._depth += 1
            if self._depth == 1:
                self._patch()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._depth -= 1
            if self._depth == 0:
                self._unpatch()
        return False

    def _patch(self):
        """Every nn.Module class's own __init__ (and those of classes defined
        inside the block) shards its module when the outermost one returns."""
        for cls in _subclasses(torch.nn.Module):
            self._wrap(cls)
        init_subclass = torch.nn.Module.__dict__.get("__init_subclass__")
        wrap = self._wrap

        def on_subclass(cls, **kwargs):
            super(torch.nn.Module, cls).__init_subclass__(**kwargs)
            wrap(cls)

        torch.nn.Module.__init_subclass__ = classmethod(on_subclass)
        self._patched.append((torch.nn.Module, "__init_subclass__", init_subclass))

    def _unpatch(self):
        for cls, name, original in reversed(self._patched):
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        self._patched = []

    def _wrap(self, cls):
        original = cls.__dict__.get("__init__")
        if not inspect.isfunction(original) or getattr(original, "_zshard_wrapped", False):
            return
        shard = self._shard_module

        @functools.wraps(original)
        def init(module, *args, **kwargs):
            depth = module.__dict__.get("_zshard_init_depth", 0)
            object.__setattr__(module, "_zshard_init_depth", depth + 1)
            try:
                original(module, *args, **kwargs)
            finally:
                object.__setattr__(module, "_zshard_init_depth", depth)
            if depth == 0:
                del module.__dict__["_zshard_init_depth"]
                shard(module)

        init._zshard_wrapped = True
        cls.__init__ = init
        self._patched.append((cls, "__init__", original))

    def _shard_module(self, module):
        with torch.no_grad():
            for p in module.parameters():
                if not is_sharded(p):
                    _shard(p, self._dtype, self._device)


def _subclasses(cls):
    out, todo = [], [cls]
    while todo:
        c = todo.pop()
        out.append(c)
        todo.extend(c.__subclasses__())
    return out


def _world():
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def _chunk(numel, world):
    return -(-numel // world)


def _shard(p, dtype, device):
    """p keeps this rank's 1/N of rank 0's values and becomes a placeholder."""
    data = p.data
    if dtype is not None and data.is_floating_point():
        data = data.to(dtype)
    data = data.to(device)
    if _world()[1] > 1:
        dist.broadcast(data, 0)
    p._zshard_shard = _own_part(data)
    p.ds_shape, p.ds_numel = data.shape, data.numel()
    p.data = data
    to_placeholder(p)


def _own_part(data):
    """This rank's 1/N of `data`'s elements (a copy)."""
    rank, world = _world()
    chunk = _chunk(data.numel(), world)
    return data.reshape(-1)[rank * chunk:(rank + 1) * chunk].clone()


def to_placeholder(p):
    """p holds no values: an empty tensor of its dtype on its device."""
    p.data = torch.empty(0, dtype=p.dtype, device=p.device)


def is_sharded(p):
    """Whether p was built under Init and is not yet the engine's."""
    return getattr(p, "_zshard_shard", None) is not None


def _is_placeholder(p):
    return p.numel() == 0 and hasattr(p, "ds_shape")


def shape_of(p):
    """p's whole shape (a placeholder's ds_shape)."""
    return p.ds_shape if _is_placeholder(p) else p.shape


def whole(p):
    """p's whole values from every rank's shard (collective)."""
    world = _world()[1]
    shard, chunk = p._zshard_shard, _chunk(p.ds_numel, world)
    out = torch.zeros(chunk * world, dtype=shard.dtype, device=shard.device)
    if world == 1:
        out[:shard.numel()] = shard
    else:
        mine = torch.zeros(chunk, dtype=shard.dtype, device=shard.device)
        mine[:shard.numel()] = shard
        dist.all_gather(list(out.split(chunk)), mine)
    return out[:p.ds_numel].view(p.ds_shape)


@contextlib.contextmanager
def gathered(params, modifier_rank=None):
    """zero.GatheredParameters over parameters built under Init (before
    initialize): whole inside the block (collective); with modifier_rank,
    that rank's values after it are every rank's new shards."""
    for p in params:
        p.data = whole(p)
    try:
        yield
        if modifier_rank is not None:
            for p in params:
                if _world()[1] > 1:
                    dist.broadcast(p.data, modifier_rank)
                p._zshard_shard = _own_part(p.data)
    finally:
        for p in params:
            to_placeholder(p)


def materialize(params):
    """The parameters made whole again (collective, in the given order)."""
    for p in params:
        if is_sharded(p):
            p.data = whole(p)
            p._zshard_shard = None


def hand_over(session, params):
    """Stage 3: the engine's parameters built under Init give their values
    to the engine (set_weights), a few at a time so that the whole values
    held at once stay within the largest parameter; then they are the
    engine's placeholders (see whole_shaped). Collective."""
    pending = [i for i, p in enumerate(params) if is_sharded(p)]
    bound = max((params[i].ds_numel for i in pending), default=0)
    while pending:
        values, held = [None] * len(params), 0
        while pending and (held == 0 or held + params[pending[0]].ds_numel <= bound):
            i = pending.pop(0)
            values[i] = whole(params[i]).float().cpu().contiguous().numpy()
            held += params[i].ds_numel
        session.set_weights(values)
        for i, v in enumerate(values):
            if v is not None:
                params[i]._zshard_shard = None
        del values
    if bound:  # something was handed over
        _return_freed_memory()


def _return_freed_memory():
    """glibc keeps freed heap memory (the shards just handed over) mapped;
    give it back so the process's RSS is its real use."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def whole_shaped(params):
    """Placeholders handed over take their whole shape without memory (one
    element, expanded) until the stage-3 fetcher makes them placeholders
    again: autograd's gradient accumulators, made in between, take the
    parameter's shape as it is then."""
    for p in params:
        if _is_placeholder(p):
            p.data = torch.empty(1, dtype=p.dtype, device=p.device).expand(p.ds_shape)
