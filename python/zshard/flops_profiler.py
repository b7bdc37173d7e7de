"""DeepSpeed's flops_profiler: at optimizer step `profile_step` (DeepSpeed's
count: the forward that runs when global_steps == profile_step) rank 0
counts each module's parameters and its forward's multiply-accumulates
(MACs) and floating-point operations, times the forward, and prints (or
writes to output_file) DeepSpeed's profile: the summary, the top_modules
modules per depth, and the module tree to module_depth (-1: all).

Counting patches torch's functions for the profiled forward only (linear,
matmul, convolutions, attention, normalisations, activations) and
attributes each call to the innermost module running it. A step's flops
are 3 x forward (backward = 2 x forward), plus recompute_fwd_factor x
forward for activation checkpointing, as DeepSpeed counts them."""
import contextlib
import functools
import math
import sys
import time

import torch
import torch.nn.functional as F


def _numel(shape):
    return math.prod(shape)


def _linear(input, weight, bias=None):
    rows = input.numel() // max(input.shape[-1], 1)
    macs = rows * weight.numel()
    return macs, 2 * macs + (rows * weight.shape[0] if bias is not None else 0)


def _matmul_result(out, a, *unused, **kw):
    macs = out.numel() * (a.shape[-1] if a.dim() > 0 else 1)
    return macs, 2 * macs


def _conv(out, input, weight, bias=None, *args, **kw):
    per_output = weight.shape[1] * _numel(weight.shape[2:])  # in_channels / groups x kernel
    macs = out.numel() * per_output
    return macs, 2 * macs + (out.numel() if bias is not None else 0)


def _elementwise(out, *args, **kw):
    return 0, out.numel() if isinstance(out, torch.Tensor) else 0


def _norm(factor):
    def count(out, input, *args, **kw):
        return 0, factor * input.numel()
    return count


def _attention(out, q, k, v, *args, **kw):
    macs = 2 * q.numel() // q.shape[-1] * k.shape[-2] * q.shape[-1]  # QK^T and AV
    return macs, 2 * macs


# (owner, function name) -> how to count a call from its result and
# arguments; _BEFORE's count from the arguments alone. Only functions that
# call none of the others (F.relu calls torch.relu: torch.relu is counted).
_BEFORE = {(F, "linear"): _linear}
_AFTER = {(torch, "matmul"): _matmul_result, (torch, "bmm"): _matmul_result, (torch, "mm"): _matmul_result,
          (torch, "baddbmm"): lambda out, c, a, *r, **k: _matmul_result(out, a),
          (torch, "addmm"): lambda out, c, a, *r, **k: _matmul_result(out, a),
          (torch.Tensor, "matmul"): _matmul_result, (torch.Tensor, "__matmul__"): _matmul_result,
          (torch.Tensor, "bmm"): _matmul_result, (torch.Tensor, "mm"): _matmul_result,
          (F, "conv1d"): _conv, (F, "conv2d"): _conv, (F, "conv3d"): _conv,
          (torch, "relu"): _elementwise, (F, "gelu"): _elementwise, (F, "silu"): _elementwise,
          (F, "leaky_relu"): _elementwise, (F, "elu"): _elementwise, (torch, "tanh"): _elementwise,
          (torch, "sigmoid"): _elementwise, (F, "softmax"): _norm(3), (F, "log_softmax"): _norm(3),
          (F, "dropout"): _elementwise, (F, "layer_norm"): _norm(5), (F, "batch_norm"): _norm(5),
          (F, "group_norm"): _norm(5)}
if hasattr(F, "scaled_dot_product_attention"):
    _AFTER[(F, "scaled_dot_product_attention")] = _attention


class _Counter:
    """MACs and flops per module of one forward."""

    def __init__(self, model):
        self.model = model
        self.macs, self.flops, self.latency = {}, {}, {}
        self.stack = [model]
        self._starts = {}
        on_gpu = any(p.is_cuda for p in model.parameters())
        # Module latencies need the device's work done (the profiled step only).
        self.sync = torch.cuda.synchronize if on_gpu else (lambda: None)

    def charge(self, macs, flops):
        for module in self.stack:  # a module's counts include its children's
            self.macs[module] = self.macs.get(module, 0) + macs
            self.flops[module] = self.flops.get(module, 0) + flops

    def pre(self, module, inputs):
        self.stack.append(module)
        self.sync()
        self._starts[module] = time.perf_counter()

    def post(self, module, inputs, output):
        self.sync()
        if self.stack and self.stack[-1] is module:
            self.stack.pop()
        self.latency[module] = self.latency.get(module, 0.0) + time.perf_counter() - self._starts.pop(module)


@contextlib.contextmanager
def _counting(counter):
    """torch's functions patched to charge `counter`, module hooks to track
    which module runs; all undone on leaving."""
    saved = []

    def wrap(owner, name, count, before):
        original = getattr(owner, name)

        @functools.wraps(original)
        def counted(*args, **kwargs):
            if before:
                counter.charge(*count(*args, **kwargs))
                return original(*args, **kwargs)
            out = original(*args, **kwargs)
            counter.charge(*count(out, *args, **kwargs))
            return out
        saved.append((owner, name, original))
        setattr(owner, name, counted)

    handles = []
    try:
        for (owner, name), count in _BEFORE.items():
            wrap(owner, name, count, True)
        for (owner, name), count in _AFTER.items():
            wrap(owner, name, count, False)
        for m in counter.model.modules():
            if m is not counter.model:
                handles += [m.register_forward_pre_hook(counter.pre), m.register_forward_hook(counter.post)]
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)
        for h in handles:
            h.remove()


def _num(value, unit=""):
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.2f} {unit}".rstrip()


def _seconds(value):
    return f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.2f} s"


class Profiler:
    """Rank 0's flops profiler for one engine (observe.Observer drives it)."""

    def __init__(self, model, o, world_size):
        self._model = model
        self._step = o.profile_step
        self._depth = o.module_depth
        self._top = o.top_modules
        self._detailed = o.flops_detailed
        self._recompute = o.recompute_fwd_factor
        self._output = o.flops_output_file or None
        self._world = world_size
        self._counter = None
        self._context = None
        self._forward_seconds = 0.0
        self._started = None
        self.done = False
        self.report = None  # the text, once printed

    def forward_start(self, global_steps):
        if self.done or global_steps != self._step or self._counter is not None:
            return
        self._counter = _Counter(self._model)
        self._context = _counting(self._counter)
        self._context.__enter__()
        self._counter.sync()
        self._started = time.perf_counter()

    def forward_end(self):
        if self._context is not None:
            self._counter.sync()
            self._forward_seconds = time.perf_counter() - self._started
            self._context.__exit__(None, None, None)
            self._context = None

    def step_end(self, engine, step_seconds):
        if self._counter is None or self.done:
            return
        self.done = True
        self.report = self._text(engine, step_seconds)
        if self._output:
            with open(self._output, "w", encoding="utf-8") as f:
                f.write(self.report)
        else:
            print(self.report, file=sys.stderr, flush=True)

    # -- DeepSpeed's print_model_profile ---------------------------------------

    def _text(self, engine, step_seconds):
        c, model = self._counter, self._model
        params = sum(p.numel() for p in model.parameters())
        fwd_flops, fwd_macs = c.flops.get(model, 0), c.macs.get(model, 0)
        gas = engine.gradient_accumulation_steps()
        total_flops = fwd_flops * (3 + self._recompute) * gas
        fwd = self._forward_seconds
        lines = ["", "-------------------------- DeepSpeed Flops Profiler --------------------------",
                 f"Profile Summary at step {self._step}:",
                 f"world size:                                                   {self._world}",
                 f"batch size per GPU:                                           "
                 f"{engine.train_micro_batch_size_per_gpu()}",
                 f"params per GPU:                                               {_num(params)}",
                 f"fwd MACs per GPU:                                             {_num(fwd_macs, 'MACs')}",
                 f"fwd flops per GPU:                                            {_num(fwd_flops)}",
                 f"fwd latency:                                                  {_seconds(fwd)}",
                 f"fwd FLOPS per GPU = fwd flops per GPU / fwd latency:          "
                 f"{_num(fwd_flops / max(fwd, 1e-12), 'FLOPS')}",
                 f"iter latency:                                                 {_seconds(step_seconds)}",
                 f"FLOPS per GPU = {3 + self._recompute:g} * fwd flops per GPU * {gas} micro step(s) / iter latency: "
                 f"{_num(total_flops / max(step_seconds, 1e-12), 'FLOPS')}",
                 f"samples/second:                                               "
                 f"{engine.train_batch_size() / max(step_seconds, 1e-12):.2f}", ""]
        lines += self._aggregated()
        if self._detailed:
            lines += ["", "------------------------------ Detailed Profile per GPU ------------------------------",
                      "Each module: params, percentage of total params, MACs, percentage of total MACs, "
                      "fwd latency, percentage of the forward's latency, fwd FLOPS", ""]
            lines += self._tree(model, "", 0, params, fwd_macs, fwd)
        lines.append("------------------------------------------------------------------------------")
        return "\n".join(lines) + "\n"

    def _by_depth(self):
        """{depth: [(name, module)]} below the model (depth 0 = its children)."""
        out = {}

        def walk(module, prefix, depth):
            for name, child in module.named_children():
                out.setdefault(depth, []).append((prefix + name, child))
                walk(child, prefix + name + ".", depth + 1)
        walk(self._model, "", 0)
        return out

    def _measured(self, table, module, default):
        """A module's count; a container never called itself (ModuleList)
        sums its children's."""
        c = self._counter
        if module in c.latency or module is self._model:
            return table.get(module, default)
        return sum((self._measured(table, child, default) for child in module.children()), default)

    def _aggregated(self):
        c = self._counter
        lines = ["----------------------------- Aggregated Profile per GPU -----------------------------",
                 f"Top {self._top} modules in terms of params, MACs or fwd latency at different model depths:"]
        for depth, modules in sorted(self._by_depth().items()):
            if self._depth != -1 and depth >= self._depth:
                break
            def top(key, fmt):
                ranked = sorted(modules, key=lambda nm: -key(nm[1]))[:self._top]
                return "{" + ", ".join(f"'{n}': '{fmt(key(m))}'" for n, m in ranked) + "}"
            lines += [f"depth {depth}:",
                      f"    params      - {top(lambda m: sum(p.numel() for p in m.parameters()), _num)}",
                      f"    MACs        - {top(lambda m: self._measured(c.macs, m, 0), lambda v: _num(v, 'MACs'))}",
                      f"    fwd latency - {top(lambda m: self._measured(c.latency, m, 0.0), _seconds)}"]
        return lines

    def _tree(self, module, name, depth, params, macs, latency):
        c = self._counter
        own = sum(p.numel() for p in module.parameters())
        m = self._measured(c.macs, module, 0)
        lat = self._forward_seconds if module is self._model else self._measured(c.latency, module, 0.0)
        flops = self._measured(c.flops, module, 0)
        line = (f"{'  ' * depth}{name or type(module).__name__}: {type(module).__name__}, {_num(own)} "
                f"= {100 * own / max(params, 1):.2f}% Params, {_num(m, 'MACs')} = {100 * m / max(macs, 1):.2f}% "
                f"MACs, {_seconds(lat)} = {100 * lat / max(latency, 1e-12):.2f}% latency, "
                f"{_num(flops / max(lat, 1e-12), 'FLOPS')}")
        lines = [line]
        if self._depth == -1 or depth < self._depth:
            for child_name, child in module.named_children():
                lines += self._tree(child, child_name, depth + 1, params, macs, latency)
        return lines

    def total_flops(self):
        """The profiled forward's flops (tests)."""
        return self._counter.flops.get(self._model, 0) if self._counter is not None else None
