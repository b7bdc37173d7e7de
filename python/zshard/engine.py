"""DeepSpeed's engine API over zshard's C++ runtime.

The engine owns no numerics: parameters become views of the C++ engine's
flat buffer, gradient hooks hand each gradient to it as backward produces
them, and step() lets it reduce, clip, scale and update (see
runtime/zero/session.h). Unsupported requests fail loudly here.
"""
import contextlib
import io
import json
import math
import os
import random
import sys
import time
import warnings

import torch
import torch.utils.dlpack

from zshard import (_C, client_optimizer, comm, dataloader, observe, optimizer_view, prefetch, preemption,
                    stage3, untested_optimizer, zero_init)


def add_config_arguments(parser):
    """DeepSpeed's add_config_arguments: --deepspeed, --deepspeed_config and
    their deprecated --deepscale names on an argparse parser (returned)."""
    group = parser.add_argument_group("DeepSpeed", "DeepSpeed configurations")
    group.add_argument("--deepspeed", default=False, action="store_true",
                       help="Enable DeepSpeed (helper flag for user code, no impact on DeepSpeed backend)")
    group.add_argument("--deepspeed_config", default=None, type=str, help="DeepSpeed json configuration file.")
    group.add_argument("--deepscale", default=False, action="store_true",
                       help="Deprecated enable DeepSpeed (helper flag for user code, no impact on DeepSpeed backend)")
    group.add_argument("--deepscale_config", default=None, type=str,
                       help="Deprecated DeepSpeed json configuration file.")
    return parser


def _args_config(args):
    """args.deepspeed_config, or the deprecated args.deepscale_config."""
    if args is None:
        return None
    given = getattr(args, "deepspeed_config", None)
    old = getattr(args, "deepscale_config", None)
    if given is not None and old is not None:
        raise _C.ConfigError("args: both deepspeed_config and the deprecated deepscale_config are given; "
                             "keep deepspeed_config")
    if old is not None:
        warnings.warn("args.deepscale_config is deprecated; use --deepspeed_config")
    return given if given is not None else old


def _config_text(args, config):
    """The ds.json as text, from config (dict or path), args.deepspeed_config,
    or zlaunch's ZSHARD_CONFIG. Both config= and args.deepspeed_config is an
    error, as in DeepSpeed."""
    from_args = _args_config(args)
    if config is not None and from_args is not None:
        raise _C.ConfigError(f"config: given both to initialize(config=...) and as args.deepspeed_config "
                             f"({from_args}); pass one")
    if config is None:
        config = from_args
    if config is None:
        config = os.environ.get("ZSHARD_CONFIG") or None
    if config is None:
        raise _C.ConfigError("config: expected a ds.json path or dict (config=..., args.deepspeed_config, "
                             "or zlaunch --config), got none")
    if isinstance(config, dict):
        return json.dumps(config)
    with open(config, encoding="utf-8") as f:
        return f.read()


_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class ZshardEngine(torch.nn.Module):
    """What zshard.initialize returns first: DeepSpeed's engine surface."""

    def __init__(self, model, params, session, cfg, fetcher, observer):
        super().__init__()
        self._fetcher = fetcher  # stage 3: gathers and drops the parameters (stage3.py)
        self.module = model
        self._params = params
        self._names = _parameter_names(model, params)
        self._session = session
        self._grad_dtype = _DTYPES[cfg.gradient_precision]
        self._auto_cast = cfg.fp16_auto_cast
        self._cfg = cfg
        self._preemption = preemption.Preemption(self, cfg.checkpoint_dir) if cfg.save_on_signal else None
        self._step_applied = False
        self.micro_steps = 0  # engine.step() calls, as DeepSpeed counts them
        self._observer = observer  # monitors, trace, comms log, flops profiler (observe.py)
        topo = session.topology
        self.local_rank = topo["local_rank"]
        self.global_rank = topo["rank"]
        self.world_size = topo["world_size"]
        self.device = params[0].device
        self._engine_stream = (torch.cuda.ExternalStream(session.stream, device=self.device)
                               if self.device.type == "cuda" else None)
        # What each parameter must stay: a view of the engine's buffer.
        self._views = [(p.data_ptr(), p.dtype, p.device) for p in params]
        self._model_params = {id(p) for p in model.parameters()}
        self._warned_discard = False
        self._inside_no_sync = False
        self._grads_shown = False  # stage 0: p.grad are the reduced gradients (_show_reduced_grads)
        self._shard_optimizer = None  # a client optimizer stepping the shard (untested_optimizer)
        self.optimizer = None  # the torch-shaped view initialize() returns (optimizer_view)
        self.lr_scheduler = None
        self._drop_last = False
        for i, p in enumerate(params):  # initialize() and deepspeed.utils.safe_get_full_* read these
            p._zshard_owner, p._zshard_index = self, i
        self._grad_hooks = [_after_accumulation(p, self._hand_over(i)) for i, p in enumerate(params)]
        self._load_hooks = _watch_state_dict_loads(model, self)

    def _hand_over(self, index):
        """The gradient hook: gives parameter `index`'s gradient of this
        backward to the engine and drops autograd's copy at once, so no full
        set of gradients is ever held (ZeRO-2's memory)."""
        session, dtype, fetcher = self._session, self._grad_dtype, self._fetcher

        def hook(param):
            grad = param.grad
            param.grad = None
            if grad is None:
                return
            grad = grad.to(dtype).contiguous()
            if grad.is_cuda:
                # The engine's stream waits for torch's on the device (an
                # event, no host sync), and torch's allocator keeps the
                # memory until the engine's stream has read it.
                producer = torch.cuda.current_stream(grad.device)
                session.add_gradient(index, torch.utils.dlpack.to_dlpack(grad), producer.cuda_stream)
                grad.record_stream(self._engine_stream)
            else:
                session.add_gradient(index, torch.utils.dlpack.to_dlpack(grad))
            if fetcher is not None:
                fetcher.grad_arrived(index)

        return hook

    @property
    def _client_scheduler(self):
        """The script's own scheduler (stepped by engine.step()), or None."""
        s = self.lr_scheduler
        return None if s is None or isinstance(s, optimizer_view.ConfigScheduler) else s

    def _check_views(self):
        """Raises naming a parameter that no longer is the engine's view (the
        model was moved or cast, or .data reassigned, after initialize()), or
        one added to the model since: either would silently stop training."""
        for name, p, (ptr, dtype, device) in zip(self._names, self._params, self._views):
            moved = p.dtype != dtype or p.device != device
            if moved or (self._fetcher is None and p.data_ptr() != ptr):  # stage 3 swaps .data itself
                raise _C.ZshardError(
                    f"parameter {name}: expected the engine's {dtype} view on {device}, found a {p.dtype} "
                    f"tensor on {p.device} (model.to(), .double(), .half() or assigning .data after "
                    "initialize() detaches it from training); move or cast the model before "
                    "zshard.initialize()")
        if len(self._model_params) != sum(1 for _ in self.module.parameters()):
            for name, p in self.module.named_parameters():
                if id(p) not in self._model_params:
                    raise _C.ZshardError(
                        f"parameter {name}: added to the model after initialize(), so no optimizer "
                        "steps it; build the whole model before zshard.initialize()")

    def _refresh_weights(self, values):
        """New fp32 weights (by parameter index; None keeps the current
        value) into the engine's master copy on every rank."""
        arrays = [None if v is None else v.detach().float().cpu().contiguous().numpy() for v in values]
        self._session.set_weights(arrays)
        if self._fetcher is not None:
            self._fetcher.refresh_persistent()

    def forward(self, *inputs, **kwargs):
        began = self._observer.forward_start(self.global_steps)
        self._check_views()
        if self._auto_cast:  # fp16.auto_cast: floating inputs become fp16, as DeepSpeed does
            inputs, kwargs = _to_half(inputs), _to_half(kwargs)
        out = self.module(*inputs, **kwargs)
        self._observer.forward_end(began)
        return out

    def backward(self, loss, release_loss=False, retain_graph=False, scale_wrt_gas=True):
        """DeepSpeed's backward. The engine averages over the micro steps of
        an accumulation window (DeepSpeed's loss / gradient_accumulation_steps);
        scale_wrt_gas=False sums them instead. release_loss has nothing to
        release here."""
        began = self._observer.backward_start(loss)
        self._drop_reduced_grads()
        scale = self._session.loss_scale
        if not scale_wrt_gas:
            scale *= self._session.gradient_accumulation_steps
        (loss * scale if scale != 1.0 else loss).backward(retain_graph=retain_graph)
        if self._fetcher is not None:
            self._fetcher.end_backward()
        if self._cfg.stage == 0 and self._session.reduce_boundary():
            self._show_reduced_grads()
        self._observer.backward_end(began)

    def _show_reduced_grads(self):
        """Stage 0, as DeepSpeed: after the boundary's backward p.grad is the
        gradient averaged over ranks and micro steps (times the loss scale),
        a view of the engine's buffer where the dtypes agree (so an in-place
        change, a script's own clipping, reaches the step), else a copy."""
        for i, p in enumerate(self._params):
            grad = torch.utils.dlpack.from_dlpack(self._session.reduced_gradient(i))
            p.grad = grad if grad.dtype == p.dtype else grad.to(p.dtype)
        self._grads_shown = True

    def _drop_reduced_grads(self):
        if self._grads_shown:
            for p in self._params:
                p.grad = None
            self._grads_shown = False

    @contextlib.contextmanager
    def no_sync(self):
        """DeepSpeed's no_sync(): backward inside exchanges no gradients. At
        stages 0 and 1 the engine reduces only at the accumulation boundary,
        so the micro steps before it never communicate; a boundary step
        inside would need every rank's gradients and is refused. Stage 2
        reduces during backward and refuses no_sync, as DeepSpeed does."""
        if self._cfg.stage >= 2:
            raise _C.ZshardError(f"no_sync(): incompatible with ZeRO stage {self._cfg.stage}'s gradient partitioning "
                                 "(as in DeepSpeed); use stage 0 or 1, or let gradient_accumulation_steps "
                                 "accumulate without communication")
        if self._inside_no_sync:
            raise _C.ZshardError("no_sync(): already inside no_sync(); it does not nest")
        self._inside_no_sync = True
        try:
            yield
        finally:
            self._inside_no_sync = False

    def is_gradient_accumulation_boundary(self):
        return self._session.at_boundary

    def step(self, lr_kwargs=None):
        if lr_kwargs and self._client_scheduler is None:
            raise _C.ConfigError(f"step(lr_kwargs={lr_kwargs!r}): the config's scheduler takes no step "
                                 "arguments in zshard; pass none (a client lr_scheduler gets them)")
        if self._inside_no_sync and self._session.at_boundary:
            raise _C.ZshardError("engine.step() at a gradient-accumulation boundary inside no_sync(): the "
                                 "optimizer step needs every rank's gradients; leave no_sync() before the "
                                 "boundary's backward and step")
        began = self._observer.step_start()
        self._check_views()
        self._drop_reduced_grads()
        if self._fetcher is not None and self._fetcher.live():
            raise _C.ZshardError("engine.step(): ZeRO-3 parameters are still gathered (a forward without its "
                                 "backward, or zero.GatheredParameters still open); finish them first")
        before = self._session.global_steps
        stepped = self._session.step(self.optimizer.lrs_for_step())
        if stepped and self._fetcher is not None:
            self._fetcher.refresh_persistent()
        if stepped:  # the schedule moves after applied steps only
            if self._client_scheduler is not None:
                self._client_scheduler.step(**(lr_kwargs or {}))
            elif self.lr_scheduler is not None:
                self.optimizer.set_lr(self._session.lr)
        self._step_applied = stepped
        self.micro_steps += 1
        boundary = self._session.global_steps != before
        self._observer.step_end(began, boundary, self)
        if boundary and self._session.global_steps % self._session.steps_per_print == 0:
            self._report()
        if stepped and self._preemption is not None:
            self._preemption.after_step()
        return stepped

    def _report(self):
        """DeepSpeed's steps_per_print line (rank 0), and wall_clock_breakdown timings."""
        if self.global_rank != 0:
            return
        s = self._session
        totals = self._observer.totals
        elapsed = time.monotonic() - totals.started
        times = totals.take()
        samples = s.train_batch_size * s.steps_per_print
        line = (f"[zshard] step={s.global_steps} skipped={s.skipped_steps} lr={self.get_lr()[0]:.3e} "
                f"loss_scale={s.loss_scale:g} grad_norm={s.grad_norm:.4g} "
                f"step_time={elapsed / s.steps_per_print:.4f}s samples/sec={samples / elapsed:.1f}")
        if s.wall_clock_breakdown:
            line += " | " + " ".join(f"{k}={times[k] / 1e3 / s.steps_per_print:.2f}ms"
                                     for k in ("forward", "backward", "step"))
        print(line, file=sys.stderr, flush=True)

    def zero_grad(self, set_to_none=True):
        """Drops the gradients of the unfinished accumulation window (the
        engine holds them, not .grad). Collective when called between
        backward() and step(): call it on every rank at the same point."""
        for p in self._params:
            p.grad = None
        self._grads_shown = False
        discarded = self._session.discard_window()
        if discarded and not self._warned_discard and self.global_rank == 0:
            self._warned_discard = True
            warnings.warn(f"engine.zero_grad() discarded the gradients of {discarded} micro step(s) of an "
                          "unfinished gradient-accumulation window; call it only after engine.step() at a "
                          "boundary (engine.step() already clears them) to keep accumulating")

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
                                "module_state": {n: t.detach().cpu() for n, t in module_state.items()},
                                "optimizer_groups": self.optimizer.state_dict(),
                                "lr_scheduler": (self._client_scheduler.state_dict()
                                                 if self._client_scheduler is not None else None)})
        self._session.save_checkpoint(os.fspath(save_dir), str(tag), self._names, list(module_state), client,
                                      _to_bytes(self._rank_state()), save_latest)
        self._observer.flush()  # the monitors' files as far as the checkpoint
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
        if self._fetcher is not None:  # runs kept whole take the loaded weights
            self._fetcher.refresh_persistent()
        if r["rank_state"]:
            self._restore_rank_state(_from_bytes(r["rank_state"]), load_optimizer_states)
        saved = _from_bytes(r["client_state"])
        with torch.no_grad():
            for name, value in saved["module_state"].items():
                tensors[name].copy_(value)
        self._restore_schedule(saved, load_optimizer_states, load_lr_scheduler_states)
        return r["path"], saved["client_state"]

    def _rank_state(self):
        """This rank's own part of a checkpoint: RNG states, and a client
        optimizer's state when it steps the shard itself."""
        state = _rng_states()
        if self._shard_optimizer is not None:
            state["shard_optimizer"] = self._shard_optimizer.state_dict()
        return state

    def _restore_rank_state(self, state, optimizer_states):
        _set_rng_states(state)
        if self._shard_optimizer is not None and optimizer_states and "shard_optimizer" in state:
            self._shard_optimizer.load_state_dict(state["shard_optimizer"])

    def _restore_schedule(self, saved, optimizer_states, scheduler_states):
        """The groups' lr and a client scheduler's position, as saved."""
        if scheduler_states and saved.get("lr_scheduler") is not None and self._client_scheduler is not None:
            self._client_scheduler.load_state_dict(saved["lr_scheduler"])
        if (optimizer_states or scheduler_states) and saved.get("optimizer_groups") is not None:
            self.optimizer.load_state_dict(saved["optimizer_groups"])
        if self._client_scheduler is None and self.lr_scheduler is not None:
            self.optimizer.set_lr(self._session.lr)  # the config's schedule, at its restored position

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
    def monitor(self):
        """DeepSpeed's engine.monitor: `enabled`, and write_events([(tag,
        value, step), ...]) for a script's own metrics (rank 0 writes)."""
        return _Monitor(self._observer)

    @property
    def skipped_steps(self):
        return self._session.skipped_steps

    def get_lr(self):
        """The lr of each parameter group for the next step."""
        return [g["lr"] for g in self.optimizer.param_groups]

    def get_mom(self):
        """Each group's betas for Adam/AdamW/Lamb (its own, or the config's
        as OneCycle cycles them), the momentum for SGD."""
        s = self._session
        b1, b2 = s.momentum
        if self._cfg.optimizer_type == "SGD":
            return [b1 for _ in self.optimizer.param_groups]
        return [(b1, b2) if s.cycles_momentum else tuple(g.get("betas", (b1, b2))) for g in self.optimizer.param_groups]

    def was_step_applied(self):
        """Whether the last step() updated the parameters (False between
        accumulation boundaries and on skipped overflow steps)."""
        return self._step_applied

    @property
    def global_samples(self):
        return self._session.global_steps * self._session.train_batch_size

    @property
    def dp_world_size(self):
        return self.world_size

    @property
    def loss_scale(self):
        return self._session.loss_scale

    cur_scale = loss_scale  # DeepSpeed's other name for it

    def fp16_enabled(self):
        return self._cfg.precision == "fp16"

    def bfloat16_enabled(self):
        return self._cfg.precision == "bf16"

    def zero_optimization_stage(self):
        return self._cfg.stage

    def gradient_clipping(self):
        return self._cfg.gradient_clipping

    def steps_per_print(self):
        return self._session.steps_per_print

    def deepspeed_io(self, dataset, batch_size=None, route="train", pin_memory=True, data_sampler=None,
                     collate_fn=None, num_local_io_workers=None):
        """DeepSpeed's loader over `dataset` for this rank (dataloader.py):
        micro batches, a DistributedSampler over the ranks (shuffled for
        "train", in order for "eval"/"predict")."""
        if route not in ("train", "eval", "predict"):
            raise _C.ConfigError(f"deepspeed_io(route={route!r}): expected \"train\", \"eval\" or \"predict\"")
        if data_sampler is None and route != "train":
            data_sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=self.world_size,
                                                               rank=self.global_rank, shuffle=False)
        return dataloader.DataLoader(
            dataset, batch_size or self.train_micro_batch_size_per_gpu(), self.global_rank, self.world_size,
            self._drop_last, collate_fn=collate_fn, data_sampler=data_sampler,
            num_workers=2 if num_local_io_workers is None else num_local_io_workers,
            pin_memory=pin_memory and self.device.type == "cuda")

    def full_param_state(self, param, name="master"):
        """The whole fp32 `name` buffer of one of this engine's parameters
        ("master", "exp_avg", "exp_avg_sq", "momentum_buffer"), shaped like
        it, from every rank's shard. Collective: call it on every rank."""
        index = getattr(param, "_zshard_index", None)
        if index is None or index >= len(self._params) or self._params[index] is not param:
            raise _C.ZshardError("full_param_state: the tensor is not a parameter of this engine")
        shape = getattr(param, "ds_shape", param.shape)  # stage 3: the parameter may be a placeholder
        return torch.from_numpy(self._session.param_state(index, name)).view(shape)

    def set_train_batch_size(self, train_batch_size):
        """DeepSpeed's: keeps the micro batch, changes the micro steps per
        optimizer step (call it at an accumulation boundary)."""
        self._session.set_train_batch_size(int(train_batch_size))

    def save_16bit_model(self, save_dir, save_filename="pytorch_model.bin", exclude_frozen_parameters=False):
        """DeepSpeed's: rank 0 writes the module's state dict in the training
        dtype (every rank holds the whole model below stage 3) to
        save_dir/save_filename, atomically. Call it on every rank."""
        if self._fetcher is not None and not self._cfg.stage3_gather_16bit_weights_on_model_save:
            if self.global_rank == 0:  # as DeepSpeed: nothing is written
                warnings.warn("save_16bit_model: did not save the model: zero_optimization."
                              "stage3_gather_16bit_weights_on_model_save is false (each rank holds a shard only)")
            return False
        state = self._whole_state_dict(exclude_frozen_parameters)
        if self.global_rank == 0:
            os.makedirs(save_dir, exist_ok=True)
            path = os.path.join(save_dir, save_filename)
            torch.save(state, path + ".tmp")
            os.replace(path + ".tmp", path)
        comm.barrier()
        return True

    def _whole_state_dict(self, exclude_frozen):
        """The module's state dict on the CPU with every parameter whole;
        at stage 3 gathered a run at a time (collective), bounded by the
        largest run, kept by rank 0 only."""
        frozen = {n for n, p in self.module.named_parameters() if not p.requires_grad}
        tensors = self.module.state_dict(keep_vars=True) if self._fetcher is None else self._stage3_state()
        if self.global_rank != 0:
            return None
        return {k: v.detach().cpu() for k, v in tensors.items() if not (exclude_frozen and k in frozen)}

    def _stage3_state(self):
        whole = dict(self._fetcher.whole_values(keep=self.global_rank == 0))
        with self._fetcher.placeholders_allowed():
            tensors = self.module.state_dict(keep_vars=True)
        by_id = {id(p): whole[i] for i, p in enumerate(self._params) if i in whole}
        return {k: by_id.get(id(t), t) for k, t in tensors.items()}

    def get_global_grad_norm(self):
        return self._session.grad_norm

    def train_batch_size(self):
        return self._session.train_batch_size

    def gradient_accumulation_steps(self):
        return self._session.gradient_accumulation_steps

    def train_micro_batch_size_per_gpu(self):
        return self._session.micro_batch_per_gpu


class _Monitor:
    """DeepSpeed's MonitorMaster surface over the engine's observer."""

    def __init__(self, observer):
        self._observer = observer

    @property
    def enabled(self):
        return self._observer.monitoring

    def write_events(self, event_list):
        self._observer.write_events(event_list)


def _parameter_names(model, params):
    """The model's names for the engine's parameters ("param.<i>" for any
    passed in that the model does not name)."""
    named = {id(p): n for n, p in model.named_parameters()}
    return [named.get(id(p), f"param.{i}") for i, p in enumerate(params)]


def _after_accumulation(param, fn):
    """Calls fn(param) each backward once param.grad holds the gradient:
    the post-accumulate hook where torch has it, else a hook on the
    parameter's AccumulateGrad node (kept alive with the handle)."""
    if hasattr(param, "register_post_accumulate_grad_hook"):
        return param.register_post_accumulate_grad_hook(fn)
    with torch.enable_grad():
        node = param.expand_as(param).grad_fn.next_functions[0][0]
    return node, node.register_hook(lambda *_: fn(param))


def _watch_state_dict_loads(model, engine):
    """model.load_state_dict() writes into the engine's 16-bit views only;
    the master weights would undo it at the next step. Capture the incoming
    values (full precision) and hand them to the engine afterwards."""
    index = {name: i for i, name in enumerate(engine._names)}
    incoming = {}

    def before(state_dict, prefix, *unused):
        for name, i in index.items():
            value = state_dict.get(prefix + name)
            if isinstance(value, torch.Tensor):
                incoming[i] = value.detach()
        if engine._fetcher is not None:  # stage 3: whole tensors to copy into, for torch's checks
            engine._fetcher.materialize(list(incoming))

    def after(module, incompatible):
        values = [incoming.get(i) for i in range(len(engine._params))]
        incoming.clear()
        if engine._fetcher is not None:
            engine._fetcher.settle()
        if any(v is not None for v in values):
            engine._refresh_weights(values)

    return (model._register_load_state_dict_pre_hook(before),
            model.register_load_state_dict_post_hook(after))


def _to_half(value):
    if isinstance(value, torch.Tensor):
        return value.half() if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_to_half(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_half(v) for k, v in value.items()}
    return value


def _cast_module(model, trainable, dtype):
    """What DeepSpeed's module.half()/.bfloat16() does to the tensors the
    engine does not hold: frozen parameters and floating buffers (BatchNorm's
    running statistics) take the training dtype, so forward sees one dtype."""
    if dtype == torch.float32:
        return
    with torch.no_grad():
        for module in model.modules():
            for name, p in module._parameters.items():
                if p is not None and id(p) not in trainable and p.is_floating_point():
                    p.data = p.data.to(dtype)
            for name, b in module._buffers.items():
                if b is not None and b.is_floating_point():
                    module._buffers[name] = b.to(dtype)


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


# initialize() arguments DeepSpeed has that need no action here.
_NO_OP_ARGUMENTS = {"dist_init_required": "zshard always sets up its own communicator",
                    "distributed_port": "zshard's launcher chooses the port"}
# DeepSpeed's arguments for features zshard does not have: refused when given.
_REFUSED_ARGUMENTS = {"mpu": "model parallelism (mpu) is not supported; zshard is data parallel only",
                      "mesh_param": "device meshes (mesh_param) are not supported"}


def _refuse_unknown(unused):
    for name, value in unused.items():
        if name in _NO_OP_ARGUMENTS:
            continue
        if name not in _REFUSED_ARGUMENTS:
            raise _C.ConfigError(f"initialize(): unexpected keyword argument {name}=; DeepSpeed's initialize() "
                                 "has no such argument")
        if value is not None:
            raise _C.ConfigError(f"initialize(): {name}=: {_REFUSED_ARGUMENTS[name]}")


# What a parameter group may set for itself (torch's and DeepSpeed's
# param_groups), per optimizer type; other settings are the config's.
_GROUP_SETTINGS = {"Adam": ("weight_decay", "betas", "eps"), "AdamW": ("weight_decay", "betas", "eps"),
                   "Lamb": ("weight_decay", "betas", "eps"), "SGD": ("weight_decay",)}
# Group keys that need no engine setting: lr is read at each step, the
# rest are names and torch's bookkeeping.
_GROUP_PASSIVE = {"params", "lr", "name", "initial_lr"}


def _group_settings(i, group, kind):
    """Group i's own settings for the engine, checked against the type."""
    allowed = _GROUP_SETTINGS[kind]
    unknown = sorted(set(group) - set(allowed) - _GROUP_PASSIVE)
    if unknown:
        raise _C.ConfigError(f"model_parameters[{i}]: {', '.join(unknown)}: not a per-group setting of {kind} "
                             f"in zshard (a group may set lr, {', '.join(allowed)}); set it in the config's "
                             "\"optimizer\" block for every group")
    settings = {k: group[k] for k in allowed if k in group}
    if "betas" in settings:
        settings["betas"] = [float(b) for b in settings["betas"]]
    for key in ("lr", "weight_decay", "eps"):
        if key in group and not (isinstance(group[key], (int, float)) and group[key] >= 0):
            raise _C.ConfigError(f"model_parameters[{i}][\"{key}\"]: expected a number >= 0, got {group[key]!r}")
    return settings


def _flatten_groups(given, kind):
    """(trainable parameters, the optimizer's param_groups over them, each
    group's own settings for the engine ([] for none), the group index of
    each parameter) from model_parameters: tensors, or parameter groups
    (dicts) as DeepSpeed and torch take them."""
    if not any(isinstance(g, dict) for g in given):
        params = [p for p in given if p.requires_grad]
        return params, [{"params": params}], [], []
    params, seen, groups, settings, index = [], set(), [], [], []
    for i, group in enumerate(given):
        if not isinstance(group, dict):
            raise _C.ConfigError(f"model_parameters[{i}]: expected a parameter group (a dict with \"params\") "
                                 "like the others, got a tensor; put every parameter in a group")
        own = _group_settings(i, group, kind)
        members = group["params"]
        members = [members] if isinstance(members, torch.Tensor) else list(members)
        for p in members:
            if id(p) in seen:
                raise _C.ConfigError(f"model_parameters[{i}]: a parameter (shape {tuple(p.shape)}) is in two "
                                     "groups; give each parameter one group")
            seen.add(id(p))
        trainable = [p for p in members if p.requires_grad]
        if trainable:
            index += [len(groups)] * len(trainable)
            groups.append(dict(group, params=trainable))
            settings.append(own)
            params += trainable
    return params, groups, settings, index


def _with_client_optimizer(text, optimizer, model_parameters, model):
    """The config text with the client optimizer as its "optimizer" block,
    and the optimizer's parameter groups (DeepSpeed steps the client
    optimizer's parameters, not model_parameters)."""
    settings = json.loads(text)
    if isinstance(settings, dict) and "optimizer" in settings:
        raise _C.ConfigError("optimizer: given both as initialize(optimizer=...) and in the config's "
                             "\"optimizer\" block; keep one")
    parameters = model_parameters if model_parameters is not None else model.parameters()
    block, groups, instance, untested = client_optimizer.as_config(optimizer, parameters)
    settings["optimizer"] = block
    return json.dumps(settings), groups, instance, untested


def _scheduler(client, engine, cfg):
    """The scheduler initialize() returns: the client's (an object, or a
    callable given the engine's optimizer), which engine.step() steps after
    each applied step as DeepSpeed does, or the config's."""
    if client is None:
        return optimizer_view.ConfigScheduler(engine) if cfg.has_scheduler else None
    if cfg.has_scheduler:
        raise _C.ConfigError("lr_scheduler: given both as initialize(lr_scheduler=...) and in the config's "
                             "\"scheduler\" block; keep one")
    scheduler = client if hasattr(client, "step") and not isinstance(client, type) else client(engine.optimizer)
    if not hasattr(scheduler, "step"):
        raise _C.ConfigError(f"lr_scheduler: expected a scheduler (with step()) or a callable building one "
                             f"from the optimizer, got {type(scheduler).__name__}")
    return scheduler


def _in_module_order(model, params, group_of):
    """The parameters (and their group indices) in the order the model's
    modules hold them, so each module's own parameters are consecutive."""
    order = {}
    for p in model.parameters():
        order.setdefault(id(p), len(order))
    ranked = sorted(range(len(params)), key=lambda i: order.get(id(params[i]), len(order) + i))
    return [params[i] for i in ranked], [group_of[i] for i in ranked] if group_of else group_of


def _hidden_size(model):
    """The HuggingFace model's hidden size, for "auto" bucket sizes."""
    size = getattr(getattr(model, "config", None), "hidden_size", None)
    return size if isinstance(size, int) else None


def _broadcast_model(model):
    """Rank 0's parameters and buffers to every rank, as DeepSpeed does at
    initialize, so a model seeded differently (or not at all) per rank
    trains as one. Needs torch.distributed (dist_init_required=False leaves
    it down: then the engine's start check refuses differing weights)."""
    import torch.distributed as dist
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, 0)


def _hand_over_initial(session, params, stage):
    """Each parameter's values into the engine, one at a time; below stage 3
    the parameter becomes its view of the engine's buffer at once, so its
    original tensor is freed before the next is copied (the model is never
    held twice). zero.Init's shards come later (zero_init.hand_over)."""
    for i, p in enumerate(params):
        if zero_init.is_sharded(p):
            continue
        session.set_initial(i, p.detach().float().cpu().contiguous().numpy())
        if stage < 3:
            p.data = torch.utils.dlpack.from_dlpack(session.parameter(i))
    session.finish_initial()


def _rank0_log(topo):
    """A message for the user, printed once for the job (rank 0)."""
    def log(text):
        if topo["rank"] == 0:
            print(f"[zshard] {text}", file=sys.stderr, flush=True)
    return log


def _startup_line(cfg, params, topo, device):
    numel = sum(math.prod(zero_init.shape_of(p)) for p in params)
    stage = f"ZeRO stage {cfg.stage}"
    alias = getattr(sys.modules.get("deepspeed"), "__zshard_alias__", False)
    return (f"{stage}, {len(params)} trainable parameters ({numel / 1e6:.2f}M elements), "
            f"{cfg.precision} weights, {cfg.gradient_precision} gradients, {topo['world_size']} rank(s), "
            f"device {device}" + (", import deepspeed: zshard's alias" if alias else ""))


def initialize(args=None, model=None, optimizer=None, model_parameters=None, training_data=None,
               lr_scheduler=None, config=None, config_params=None, **unused):
    """DeepSpeed's initialize(): returns (engine, optimizer, dataloader, lr_scheduler).

    zshard steps its own fused optimizer, from the config's "optimizer" block
    or a client torch optimizer's settings; a client lr_scheduler drives its
    lr. The config is parsed once, here; rank 0 prints its warnings. A
    process may make several engines (each over its own parameters), in the
    same order on every rank."""
    if model is None:
        raise _C.ZshardError("initialize(): expected model=, got None")
    collate_fn = unused.pop("collate_fn", None)
    if collate_fn is not None and training_data is None:
        raise _C.ConfigError("initialize(): collate_fn= is for training_data=, which is not given")
    _refuse_unknown(unused)
    # DeepSpeed brings up torch.distributed here, so scripts may use it.
    comm.init_distributed(dist_init_required=unused.get("dist_init_required"))
    text = _config_text(args, config if config is not None else config_params)
    client, untested = None, False
    if optimizer is not None:
        text, model_parameters, client, untested = _with_client_optimizer(text, optimizer, model_parameters,
                                                                          model)
    topo = _C.topology()
    cfg = _C.load_config(text, topo["world_size"], hidden_size=_hidden_size(model), require_resolved=True)
    if untested:
        untested_optimizer.check_allowed(client, cfg)
    given = list(model_parameters) if model_parameters is not None else list(model.parameters())
    params, groups, settings, group_of = _flatten_groups(given, cfg.optimizer_type)
    if cfg.stage == 3:  # each module's parameters side by side in the flat layout: one gather each
        params, group_of = _in_module_order(model, params, group_of)
    # Built under zero.Init: whole again unless a stage-3 engine takes the shards.
    engine_owned = {id(p) for p in params} if cfg.stage == 3 else set()
    zero_init.materialize(p for p in model.parameters() if id(p) not in engine_owned)
    if not params:
        raise _C.ZshardError("initialize(): the model has no parameter that requires a gradient")
    names = _parameter_names(model, params)
    for i, p in enumerate(params):
        if not p.is_leaf:
            raise _C.ZshardError(f"initialize(): parameter {i} (shape {tuple(p.shape)}) is not a leaf "
                                 "tensor; pass the model's own parameters")
        if getattr(p, "_zshard_owner", None) is not None:
            raise _C.ZshardError(f"initialize(): parameter {names[i]} is already trained by another engine; "
                                 "give each engine its own model (a GAN's generator and discriminator)")
        if p.device != params[0].device:
            raise _C.ZshardError(f"initialize(): parameter {names[i]} is on {p.device}, {names[0]} on "
                                 f"{params[0].device}; put the whole model on one device")
    log = _rank0_log(topo)
    for w in cfg.warnings:
        log(f"warning: {w}")
    device = params[0].device
    use_gpu = device.type == "cuda"
    _broadcast_model(model)
    session = _C.Session(cfg, [list(zero_init.shape_of(p)) for p in params], [None] * len(params), use_gpu,
                         (device.index or 0) if use_gpu else 0, names, settings, group_of)
    _hand_over_initial(session, params, cfg.stage)
    zero_init.hand_over(session, params)
    _cast_module(model, {id(p) for p in params}, _DTYPES[cfg.precision])
    fetcher = None
    if cfg.stage == 3:
        for p in params:
            p.data = p.data.to(_DTYPES[cfg.precision])
        zero_init.whole_shaped(params)
        order = prefetch.Order(cfg.stage3_prefetch_bucket_size, cfg.stage3_max_live_parameters,
                               cfg.stage3_max_reuse_distance, log, cfg.log_trace_cache_warnings)
        stream = torch.cuda.ExternalStream(session.stream, device=device) if use_gpu else None
        fetcher = stage3.ParameterFetcher(model, params, session, cfg.stage3_param_persistence_threshold, order,
                                          stream)
        if cfg.memory_efficient_linear:
            stage3.use_memory_efficient_linear(model)
    else:
        for i, p in enumerate(params):
            p.data = torch.utils.dlpack.from_dlpack(session.parameter(i))
    engine = ZshardEngine(model, params, session, cfg, fetcher, observe.Observer(cfg, session, model, topo))
    if fetcher is not None:
        engine._stage3_hooks = fetcher.start(model)
    engine.optimizer = optimizer_view.EngineOptimizer(groups, {"lr": session.lr}, client)
    if cfg.has_scheduler:  # the config's schedule sets every group's lr, as DeepSpeed's schedulers do
        engine.optimizer.set_lr(session.lr)
    if untested:
        engine._shard_optimizer = untested_optimizer.ShardClientOptimizer(
            client, session, [engine.optimizer.param_groups[i] for i in engine.optimizer._stepped])
    engine.lr_scheduler = _scheduler(lr_scheduler, engine, cfg)
    engine._drop_last = cfg.dataloader_drop_last
    loader = engine.deepspeed_io(training_data, collate_fn=collate_fn) if training_data is not None else None
    log(_startup_line(cfg, params, topo, device))
    if cfg.resume_latest:
        preemption.resume_if_saved(engine, cfg.checkpoint_dir)
    return engine, engine.optimizer, loader, engine.lr_scheduler
