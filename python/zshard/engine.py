"""DeepSpeed's engine API over zshard's C++ runtime.

The engine owns no numerics: parameters become views of the C++ engine's
flat buffer, gradient hooks hand each gradient to it as backward produces
them, and step() lets it reduce, clip, scale and update (see
runtime/zero/session.h). Unsupported requests fail loudly here.
"""
import io
import json
import os
import random
import sys
import time
import warnings

import torch
import torch.utils.dlpack

from zshard import _C

_initialized = False


def _config_text(args, config):
    """The ds.json as text, from config (dict or path), args.deepspeed_config,
    or zlaunch's ZSHARD_CONFIG."""
    if config is None and args is not None:
        config = getattr(args, "deepspeed_config", None)
    if config is None:
        config = os.environ.get("ZSHARD_CONFIG") or None
    if config is None:
        raise _C.ConfigError("config: expected a ds.json path or dict (config=..., args.deepspeed_config, "
                             "or zlaunch --config), got none")
    if isinstance(config, dict):
        return json.dumps(config)
    with open(config, encoding="utf-8") as f:
        return f.read()


class ZshardEngine(torch.nn.Module):
    """What zshard.initialize returns first: DeepSpeed's engine surface."""

    def __init__(self, model, params, session):
        super().__init__()
        self.module = model
        self._params = params
        self._names = _parameter_names(model, params)
        self._session = session
        self._timers = {"forward": 0.0, "backward": 0.0, "step": 0.0}
        self._window_start = time.time()
        topo = session.topology
        self.local_rank = topo["local_rank"]
        self.global_rank = topo["rank"]
        self.world_size = topo["world_size"]
        self.device = params[0].device
        self._hooks = [p.register_hook(self._hook_for(i)) for i, p in enumerate(params)]

    def _hook_for(self, index):
        session = self._session

        def hook(grad):
            grad = grad.contiguous()
            if grad.is_cuda:
                # The engine reads it on its own stream: let torch's work finish first.
                torch.cuda.current_stream(grad.device).synchronize()
            session.add_gradient(index, torch.utils.dlpack.to_dlpack(grad))
            return grad

        return hook

    def forward(self, *inputs, **kwargs):
        t0 = time.time()
        out = self.module(*inputs, **kwargs)
        self._timers["forward"] += time.time() - t0
        return out

    def backward(self, loss):
        t0 = time.time()
        scale = self._session.loss_scale
        (loss * scale if scale != 1.0 else loss).backward()
        for p in self._params:  # the engine holds the gradients; autograd's copy is not needed
            p.grad = None
        self._timers["backward"] += time.time() - t0

    def is_gradient_accumulation_boundary(self):
        return self._session.at_boundary

    def step(self):
        t0 = time.time()
        before = self._session.global_steps
        stepped = self._session.step()
        self._timers["step"] += time.time() - t0
        if self._session.global_steps != before and self._session.global_steps % self._session.steps_per_print == 0:
            self._report()
        return stepped

    def _report(self):
        """DeepSpeed's steps_per_print line (rank 0), and wall_clock_breakdown timings."""
        if self.global_rank != 0:
            return
        s = self._session
        elapsed = time.time() - self._window_start
        samples = s.train_batch_size * s.steps_per_print
        line = (f"[zshard] step={s.global_steps} skipped={s.skipped_steps} lr={s.lr:.3e} "
                f"loss_scale={s.loss_scale:g} grad_norm={s.grad_norm:.4g} "
                f"step_time={elapsed / s.steps_per_print:.4f}s samples/sec={samples / elapsed:.1f}")
        if s.wall_clock_breakdown:
            line += " | " + " ".join(f"{k}={v * 1e3 / s.steps_per_print:.2f}ms" for k, v in self._timers.items())
        print(line, file=sys.stderr, flush=True)
        self._timers = dict.fromkeys(self._timers, 0.0)
        self._window_start = time.time()

    def zero_grad(self, set_to_none=True):
        for p in self._params:
            p.grad = None

    def save_checkpoint(self, save_dir, tag=None, client_state={}, save_latest=True,
                        exclude_frozen_parameters=False):
        """DeepSpeed's save_checkpoint: every rank saves its shard of the fp32
        weights and optimizer state under save_dir/tag (default
        "global_step<N>"), rank 0 the manifest with client_state, then
        save_dir/latest. Call it on every rank, after engine.step(). The
        module's buffers and frozen parameters (unless
        exclude_frozen_parameters) travel with rank 0's client state."""
        if tag is None:
            tag = f"global_step{self.global_steps}"
        module_state = {n: t for n, t in self._module_tensors().items()
                        if not (exclude_frozen_parameters and isinstance(t, torch.nn.Parameter))}
        client = b""
        if self.global_rank == 0:
            client = _to_bytes({"client_state": client_state,
                                "module_state": {n: t.detach().cpu() for n, t in module_state.items()}})
        self._session.save_checkpoint(os.fspath(save_dir), str(tag), self._names, list(module_state), client,
                                      _to_bytes(_rng_states()), save_latest)
        return True

    def load_checkpoint(self, load_dir, tag=None, load_module_strict=True, load_optimizer_states=True,
                        load_lr_scheduler_states=True, load_module_only=False):
        """DeepSpeed's load_checkpoint, on any number of ranks: returns
        (path, client_state), or (None, None) when load_dir has no `latest`
        file and no tag is given."""
        if not load_module_strict:
            raise _C.ZshardError("load_checkpoint: load_module_strict=False is not supported; the "
                                 "checkpoint must hold exactly this model's parameters")
        if load_module_only:
            load_optimizer_states = load_lr_scheduler_states = False
        tensors = self._module_tensors()
        r = self._session.load_checkpoint(os.fspath(load_dir), "" if tag is None else str(tag), self._names,
                                          list(tensors), bool(load_optimizer_states),
                                          bool(load_lr_scheduler_states))
        if not r["found"]:
            warnings.warn(f"load_checkpoint: {os.path.join(os.fspath(load_dir), 'latest')} does not exist; "
                          "nothing loaded (pass tag= to name a checkpoint)")
            return None, None
        if r["rank_state"]:
            _set_rng_states(_from_bytes(r["rank_state"]))
        saved = _from_bytes(r["client_state"])
        with torch.no_grad():
            for name, value in saved["module_state"].items():
                tensors[name].copy_(value)
        return r["path"], saved["client_state"]

    def _module_tensors(self):
        """The module's tensors the engine does not hold: buffers and frozen parameters."""
        engine_params = {id(p) for p in self._params}
        out = {n: p for n, p in self.module.named_parameters() if id(p) not in engine_params}
        out.update(self.module.named_buffers())
        return out

    @property
    def global_steps(self):
        return self._session.global_steps

    @property
    def skipped_steps(self):
        return self._session.skipped_steps

    def get_lr(self):
        return [self._session.lr]

    def get_global_grad_norm(self):
        return self._session.grad_norm

    def train_batch_size(self):
        return self._session.train_batch_size

    def gradient_accumulation_steps(self):
        return self._session.gradient_accumulation_steps

    def train_micro_batch_size_per_gpu(self):
        return self._session.micro_batch_per_gpu


def _parameter_names(model, params):
    """The model's names for the engine's parameters ("param.<i>" for any
    passed in that the model does not name)."""
    named = {id(p): n for n, p in model.named_parameters()}
    return [named.get(id(p), f"param.{i}") for i, p in enumerate(params)]


def _to_bytes(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _from_bytes(data):
    buffer = io.BytesIO(data)
    try:
        return torch.load(buffer, map_location="cpu", weights_only=False)
    except TypeError:  # torch without weights_only
        buffer.seek(0)
        return torch.load(buffer, map_location="cpu")


def _rng_states():
    states = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if "numpy" in sys.modules:
        states["numpy"] = sys.modules["numpy"].random.get_state()
    return states


def _set_rng_states(states):
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "numpy" in states and "numpy" in sys.modules:
        sys.modules["numpy"].random.set_state(states["numpy"])


def initialize(args=None, model=None, optimizer=None, model_parameters=None, training_data=None,
               lr_scheduler=None, config=None, config_params=None, **unused):
    """DeepSpeed's initialize(): returns (engine, optimizer, dataloader, lr_scheduler).

    zshard steps its own fused optimizer from the config's "optimizer" block,
    so optimizer= and lr_scheduler= objects are refused rather than ignored."""
    global _initialized
    if _initialized:
        raise _C.ZshardError("initialize(): already called in this process; one engine per process")
    if model is None:
        raise _C.ZshardError("initialize(): expected model=, got None")
    if optimizer is not None:
        raise _C.ConfigError("optimizer: a client optimizer object is not supported; describe it in the "
                             "config's \"optimizer\" block (Adam, AdamW, Lamb, SGD)")
    if lr_scheduler is not None:
        raise _C.ConfigError("lr_scheduler: a client scheduler object is not supported; use the config's "
                             "\"scheduler\" block")
    if training_data is not None:
        raise _C.ConfigError("training_data: building the dataloader is not supported yet; pass None")
    text = _config_text(args, config if config is not None else config_params)
    topo = _C.topology()
    summary, warnings = _C.check_config(text, topo["world_size"])
    params = [p for p in (model_parameters if model_parameters is not None else model.parameters())
              if p.requires_grad]
    if not params:
        raise _C.ZshardError("initialize(): the model has no parameter that requires a gradient")
    for i, p in enumerate(params):
        if not p.is_leaf:
            raise _C.ZshardError(f"initialize(): parameter {i} (shape {tuple(p.shape)}) is not a leaf "
                                 "tensor; pass the model's own parameters")
    use_gpu = params[0].is_cuda
    initial = [p.detach().float().cpu().contiguous().numpy() for p in params]
    session = _C.Session(text, [list(p.shape) for p in params], initial, use_gpu)
    for i, p in enumerate(params):
        view = torch.utils.dlpack.from_dlpack(session.parameter(i))
        p.data = view
    engine = ZshardEngine(model, params, session)
    _initialized = True
    return engine, None, None, None
