"""ZeRO stage 3 on the Python side: the engine keeps only each rank's
shard of the 16-bit parameters; a module's parameters are gathered whole
(a collective: every rank gathers the same runs in the same order) just
before its forward and again before its backward, and dropped after.

A run is a stretch of consecutive engine parameters (the flat layout puts
each module's own parameters together); a parameter shared by several
modules (tied weights) is a run of its own. While a run is gathered its
parameters are views of a torch buffer, so anything autograd saved keeps
that memory alive as long as it needs it; otherwise they are empty
placeholders carrying DeepSpeed's `ds_shape` and `ds_numel`. Runs of
parameters under stage3_param_persistence_threshold elements stay gathered
(refreshed after each step). Frozen parameters are not the engine's: they
stay whole on every rank.

Backward: an autograd function wrapped around a module's outputs gathers
the module's runs when the gradient reaches them; a run is dropped once
each of its parameters has handed its gradient over (grad_arrived), and at
the end of engine.backward() whatever a backward gathered is dropped.

Prefetch (prefetch.py decides, this file carries out): the runs the
recorded order needs next are gathered ahead of use, in the background on
the engine's communication thread, and a released run needed again soon
stays gathered ("kept") until its next use or the end of the pass.
"""
import contextlib
import math

import torch
import torch.utils.dlpack

from zshard import _C, zero_init


class _Run:
    """Engine parameters first..last, gathered together: `numel` elements
    of the flat layout (alignment gaps included)."""

    def __init__(self, first, last, params, numel, persistent, name):
        self.first, self.last = first, last
        self.name = name  # the module that owns it, for messages
        self.params = params  # [(engine index, parameter, offset in the run)]
        self.numel = numel
        self.persistent = persistent
        self.buffer = None
        self.uses = 0  # 0 with a buffer: kept for a use soon (prefetch.Order.keep)
        self.backward_uses = 0
        self.waiting = set()  # parameters whose gradient this backward has not brought yet


class ParameterFetcher:
    """Gathers and drops the runs of `params` (the engine's, in its order)
    for the modules of `model`."""

    def __init__(self, model, params, session, persistence_threshold, order, engine_stream):
        self._session = session
        self._order = order  # prefetch.Order: what to gather ahead and what to keep
        self._stream = engine_stream  # the engine's CUDA stream (torch.cuda.ExternalStream), None on the host
        self._in_flight = {}  # run -> (Work, buffer): prefetched, not used yet
        self._gathered = set()  # non-persistent runs with a buffer (in use or kept)
        self.live_bytes = self.peak_live_bytes = 0  # gathered buffers, prefetched and kept ones included
        self.stats = {"on_demand": 0, "prefetched": 0, "kept": 0}  # how runs came into use
        layout = session.layout()
        self._index = {id(p): i for i, p in enumerate(params)}
        owners = {}
        for module in model.modules():
            for p in module._parameters.values():
                if p is not None and id(p) in self._index:
                    owners.setdefault(id(p), set()).add(id(module))
        self._runs, self._module_runs, self._run_of = [], {}, {}
        self._names = {id(m): name or type(m).__name__ for name, m in model.named_modules()}
        for module in model.modules():
            mine = sorted({self._index[id(p)] for p in module._parameters.values()
                           if p is not None and id(p) in self._index})
            runs = [self._run(params, layout, group, persistence_threshold, self._names[id(module)])
                    for group in _consecutive(mine, lambda i: len(owners[id(params[i])]) > 1)]
            if runs:
                self._module_runs[id(module)] = runs
        self._backward_gathered = []
        self._loading = []  # materialize(): parameters given whole tensors for a load
        self._allow_placeholders = False
        for i, p in enumerate(params):
            if i not in self._run_of:
                raise _C.ZshardError(f"ZeRO stage 3: parameter {i} (shape {tuple(p.shape)}) belongs to no module of "
                                     "the model, so nothing would gather it; pass the model's own parameters")
            p.ds_shape = zero_init.shape_of(p)
            p.ds_numel = math.prod(p.ds_shape)

    def start(self, model):
        """Parameters become placeholders (the persistent ones stay
        gathered) and the hooks go on. After the engine's gradient hooks
        exist: autograd's accumulators take the whole shapes from then."""
        for run in self._runs:
            self._drop(run)
        for run in self._runs:
            if run.persistent:
                self.gather(run)
        return self._install_hooks(model)

    def _run(self, params, layout, indices, threshold, name):
        first, last = indices[0], indices[-1]
        if first in self._run_of:
            return self._run_of[first]
        start = layout[first][0]
        members = [(i, params[i], layout[i][0] - start) for i in range(first, last + 1)]
        run = _Run(first, last, members, layout[last][0] + layout[last][1] - start,
                   sum(layout[i][1] for i in range(first, last + 1)) < threshold, name)
        self._runs.append(run)
        for i in range(first, last + 1):
            self._run_of[i] = run
        return run

    def runs_of(self, module):
        return self._module_runs.get(id(module), ())

    def gather(self, run, module=None):
        """One more use of the run; the first gathers it (collective; a
        rank gathering other parameters than its peers fails, naming
        `module`), or takes its prefetched or kept buffer, and starts the
        gathers the recorded order needs next."""
        comes_into_use = run.uses == 0 and not run.persistent  # persistent runs stay out of the order
        if comes_into_use and self._order.used(run) is False:  # the pass just left the recorded order
            self._cancel_prefetch()
        if run.buffer is None:
            ahead = self._in_flight.pop(run, None)
            if comes_into_use:
                self.stats["prefetched" if ahead else "on_demand"] += 1
            work, buffer = ahead or self._start(run, module)
            self._wait(work, module)
            self._install(run, buffer)
        elif comes_into_use:
            self.stats["kept"] += 1
        run.uses += 1
        if comes_into_use:
            for ahead in self._order.ahead(lambda r: r.buffer is not None or r in self._in_flight,
                                           sum(r.numel for r in self._in_flight), self._live_numel()):
                self._in_flight[ahead] = self._start(ahead, module)

    def _start(self, run, module):
        """(Work, buffer): run's gather started into a buffer of its own."""
        p0 = run.params[0][1]
        buffer = torch.empty(run.numel, dtype=p0.dtype, device=p0.device)
        if self._stream is not None:  # the engine's stream writes memory torch's stream may still be using
            self._stream.wait_stream(torch.cuda.current_stream(buffer.device))
        self._count(buffer.numel() * buffer.element_size())
        try:
            return self._session.start_gather_into(run.first, run.last, torch.utils.dlpack.to_dlpack(buffer)), buffer
        except _C.ZshardError as e:
            raise self._error(e, module, run) from e

    def _wait(self, work, module):
        try:
            work.wait()
        except _C.ZshardError as e:
            raise self._error(e, module) from e

    def _error(self, e, module, run=None):
        where = self._names.get(id(module), "a parameter") if module is not None else "a parameter"
        ahead = f" (prefetching those of {run.name!r})" if run is not None and run.name != where else ""
        return _C.ZshardError(f"ZeRO-3: gathering the parameters of module {where!r}{ahead} on this rank: {e}")

    def _install(self, run, buffer):
        run.buffer = buffer
        if not run.persistent:
            self._gathered.add(run)
        for _, p, offset in run.params:
            p.data = buffer[offset:offset + p.ds_numel].view(p.ds_shape)

    def _count(self, nbytes):
        self.live_bytes += nbytes
        self.peak_live_bytes = max(self.peak_live_bytes, self.live_bytes)

    def _live_numel(self):
        return sum(r.numel for r in self._gathered) + sum(r.numel for r in self._in_flight)

    def _cancel_prefetch(self):
        """The pass left the recorded order: what was started is waited for
        (every rank started the same) and dropped, with the kept runs."""
        for run, (work, buffer) in self._in_flight.items():
            work.wait()
            self._count(-buffer.numel() * buffer.element_size())
        self._in_flight = {}
        self.drop_kept()

    def drop_kept(self):
        for run in [r for r in self._gathered if r.uses == 0]:
            self._drop(run)

    def release(self, run):
        run.uses -= 1
        if run.uses == 0 and not run.persistent and not self._order.keep(run, self._live_numel()):
            self._drop(run)

    def _drop(self, run):
        if run.buffer is not None:
            self._count(-run.buffer.numel() * run.buffer.element_size())
        run.buffer = None
        self._gathered.discard(run)
        for _, p, _ in run.params:
            zero_init.to_placeholder(p)

    def begin_pass(self):
        """The root module's forward starts: a new pass over the order."""
        self._cancel_prefetch()
        self._order.begin_pass()

    def gather_for_backward(self, module):
        for run in self.runs_of(module):
            self.gather(run, module)
            if run.backward_uses == 0:
                run.waiting = {i for i, _, _ in run.params}
            run.backward_uses += 1
            self._backward_gathered.append(run)

    def grad_arrived(self, index):
        """Parameter `index` handed its gradient over: a run whose every
        parameter did is dropped for this backward."""
        run = self._run_of[index]
        run.waiting.discard(index)
        if run.backward_uses and not run.waiting:
            self._end_backward_uses(run)

    def _end_backward_uses(self, run):
        while run.backward_uses:
            run.backward_uses -= 1
            self.release(run)

    def end_backward(self):
        """engine.backward() returned: drop what the backward still holds,
        what prefetch started or kept; the pass's order is recorded."""
        for run in self._backward_gathered:
            self._end_backward_uses(run)
        self._backward_gathered = []
        self._order.end_pass(trained=True)
        self._cancel_prefetch()
        try:
            self._session.end_pass()
        except _C.ZshardError as e:
            raise _C.ZshardError(f"ZeRO-3: at the end of engine.backward() on this rank: {e}") from e

    def live(self):
        """Runs gathered now, other than persistent ones."""
        return [r for r in self._runs if r.uses > (1 if r.persistent else 0)]

    def refresh_persistent(self):
        """After a step: the persistent runs take the new values (kept runs,
        old values, go)."""
        self._cancel_prefetch()
        for run in self._runs:
            if run.persistent:
                self._drop(run)
                run.uses = 0
                self.gather(run)

    def whole_values(self, keep=True):
        """(engine index, whole parameter on the CPU) one run at a time
        (collective: gathered on every rank; yielded where `keep`), for a
        16-bit state dict."""
        for run in self._runs:
            self.gather(run)
            try:
                for i, p, _ in run.params:
                    if keep:
                        yield i, p.detach().cpu().clone()
            finally:
                self.release(run)

    @contextlib.contextmanager
    def placeholders_allowed(self):
        self._allow_placeholders = True
        try:
            yield
        finally:
            self._allow_placeholders = False

    def materialize(self, indices):
        """model.load_state_dict() copies into these parameters: those not
        gathered get a whole tensor of their own for it (see settle)."""
        self._loading = [i for i in indices if self._run_of[i].uses == 0]
        for i in self._loading:
            p = self._param(i)
            p.data = torch.empty(p.ds_shape, dtype=p.dtype, device=p.device)

    def settle(self):
        """After the loaded values went to the engine: placeholders again."""
        for i in self._loading:
            zero_init.to_placeholder(self._param(i))
        self._loading = []

    def _param(self, index):
        run = self._run_of[index]
        return next(p for i, p, _ in run.params if i == index)

    def refuse_placeholders_in_state_dicts(self, model):
        """model.state_dict() at stage 3 would hold torch.Size([0])
        placeholders: refused (DeepSpeed users save those by mistake)."""
        keys = [k for k, t in model.state_dict(keep_vars=True).items() if id(t) in self._index]

        def hook(module, state_dict, prefix, local_metadata):
            if self._allow_placeholders:
                return
            if prefix == "" and any(state_dict[k].numel() == 0 for k in keys if k in state_dict):
                raise _C.ZshardError(
                    "model.state_dict() at ZeRO stage 3: each rank holds only a shard, so the parameters are "
                    "empty placeholders; use engine.save_16bit_model() (on every rank), engine.save_checkpoint() "
                    "and python3 -m zshard.consolidate, or read them inside zero.GatheredParameters")
        return model._register_state_dict_hook(hook)

    def _install_hooks(self, model):
        """Forward hooks on every module with runs of its own; the root's
        first hook starts each pass."""
        handles = [self.refuse_placeholders_in_state_dicts(model),
                   model.register_forward_pre_hook(lambda module, inputs: self.begin_pass())]
        for module in model.modules():
            if id(module) in self._module_runs:
                handles.append(module.register_forward_pre_hook(self._pre_forward))
                handles.append(module.register_forward_hook(self._post_forward))
        return handles

    def _pre_forward(self, module, inputs):
        for run in self.runs_of(module):
            self.gather(run, module)

    def _post_forward(self, module, inputs, output):
        if not torch.is_grad_enabled():  # no backward will come
            for run in self.runs_of(module):
                self.release(run)
            return output
        wrapped, ok = _wrap_outputs(output, self, module)
        for run in self.runs_of(module):
            if ok:
                self.release(run)
            else:  # outputs we cannot hook: keep the run for backward, dropped at its end
                run.backward_uses += 1
                run.waiting = {i for i, _, _ in run.params}
                self._backward_gathered.append(run)
        return wrapped


@contextlib.contextmanager
def gathered_parameters(params, modifier_rank=None):
    """DeepSpeed's zero.GatheredParameters at stage 3: the runs holding
    `params` gathered whole for the block (collective: every rank enters it
    with the same parameters); with modifier_rank, that rank's values of
    them after the block go to every rank and into the engine's master
    weights. Tensors of no stage-3 engine pass through untouched."""
    params = [params] if isinstance(params, torch.Tensor) else [p for p in params if p is not None]
    built = [p for p in params if zero_init.is_sharded(p)]
    if built:  # zero.Init's, before initialize()
        with zero_init.gathered(built, modifier_rank):
            with gathered_parameters([p for p in params if not zero_init.is_sharded(p)], modifier_rank):
                yield
        return
    engines = {}
    for p in params:
        engine = getattr(p, "_zshard_owner", None)
        if engine is not None and engine._fetcher is not None:
            engines.setdefault(id(engine), (engine, []))[1].append(p)
    held = []
    for engine, mine in engines.values():
        runs = {id(r): r for r in (engine._fetcher._run_of[p._zshard_index] for p in mine)}
        for run in sorted(runs.values(), key=lambda r: r.first):
            engine._fetcher.gather(run)
            held.append((engine, run))
    try:
        yield
        if modifier_rank is not None:
            for engine, mine in engines.values():
                _take_modified(engine, mine, modifier_rank)
    finally:
        for engine, run in held:
            engine._fetcher.release(run)


def _take_modified(engine, params, modifier_rank):
    import torch.distributed as dist
    if dist.is_initialized() and dist.get_world_size() > 1:
        for p in params:
            dist.broadcast(p.data, modifier_rank)
    values = [None] * len(engine._params)
    for p in params:
        values[p._zshard_index] = p.detach().clone()
    engine._refresh_weights(values)


def register_external_parameter(module, parameter):
    """DeepSpeed's: `module`'s forward uses `parameter` of another module,
    so at stage 3 it is gathered with the module's own."""
    engine = getattr(parameter, "_zshard_owner", None)
    if engine is None or engine._fetcher is None:
        return
    fetcher = engine._fetcher
    run = fetcher._run_of[parameter._zshard_index]
    runs = fetcher._module_runs.setdefault(id(module), [])
    if run not in runs:
        runs.append(run)
        if len(runs) == 1:  # the module had no runs: no hooks yet
            engine._stage3_hooks += [module.register_forward_pre_hook(fetcher._pre_forward),
                                     module.register_forward_hook(fetcher._post_forward)]


class _Linear(torch.autograd.Function):
    """nn.Linear for stage 3 (DeepSpeed's memory_efficient_linear): saves
    the weight parameter itself for backward, which gathers it again, where
    F.linear would save a transposed view that keeps the forward's gathered
    buffer alive through the whole backward."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight, bias)
        return torch.nn.functional.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias = ctx.saved_tensors
        grad_x = grad.matmul(weight) if ctx.needs_input_grad[0] else None
        flat_grad = grad.reshape(-1, grad.shape[-1])
        grad_w = flat_grad.t().matmul(x.reshape(-1, x.shape[-1])) if ctx.needs_input_grad[1] else None
        grad_b = flat_grad.sum(0) if bias is not None and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def use_memory_efficient_linear(model):
    """Every nn.Linear of the model forwards through _Linear."""
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            module.forward = (lambda m: lambda x: _Linear.apply(x, m.weight, m.bias))(module)


class _PreBackward(torch.autograd.Function):
    """Identity on a module's outputs whose backward first gathers the
    module's parameters again."""

    @staticmethod
    def forward(ctx, fetcher, module, *tensors):
        ctx.fetcher, ctx.module = fetcher, module
        return tuple(t.detach() for t in tensors)

    @staticmethod
    def backward(ctx, *grads):
        ctx.fetcher.gather_for_backward(ctx.module)
        return (None, None) + grads


def _wrap_outputs(output, fetcher, module):
    """(the output with its grad-requiring tensors passed through
    _PreBackward, whether every such tensor could be reached)."""
    tensors = []

    def collect(x):
        if isinstance(x, torch.Tensor):
            if x.requires_grad:
                tensors.append(x)
            return True
        if isinstance(x, (list, tuple)) and type(x) in (list, tuple):
            return all(collect(v) for v in x)
        if type(x) is dict:
            return all(collect(v) for v in x.values())
        return x is None or isinstance(x, (int, float, bool, str))

    if not collect(output):
        return output, False
    if not tensors:
        return output, True
    replaced = dict(zip(map(id, tensors), _PreBackward.apply(fetcher, module, *tensors)))

    def rebuild(x):
        if isinstance(x, torch.Tensor):
            return replaced.get(id(x), x)
        if isinstance(x, (list, tuple)):
            return type(x)(rebuild(v) for v in x)
        if isinstance(x, dict):
            return {k: rebuild(v) for k, v in x.items()}
        return x

    return rebuild(output), True


def _consecutive(indices, alone):
    """Sorted indices split into runs of consecutive ones; an index for
    which alone(i) holds is a run by itself."""
    runs = []
    for i in indices:
        if runs and not alone(i) and not alone(runs[-1][-1]) and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
