"""What watches a run: DeepSpeed's monitors (csv_monitor, tensorboard,
wandb), comms_logger, flops_profiler, zshard's trace, and the run log the
report reads (zlaunch --log-dir). The config blocks are acted on here; the
values are written by the C++ runtime's writers (runtime/observe) on
threads of their own, so the step never waits for a disk.

Per optimizer step rank 0 writes DeepSpeed's Train/Samples/* events,
indexed by global samples: train_loss (when the script gives the engine
its loss), lr, loss_scale, grad_norm, skipped_steps, samples_per_sec, and
with wall_clock_breakdown elapsed_time_ms_{forward, backward,
backward_inner, backward_allreduce, step}. backward_allreduce is the time
the backward waited on collectives (communication it could not hide)."""
import atexit
import os
import sys
import time
import warnings
import weakref

from zshard import _C, comm, flops_profiler

TRACE_DIR_ENV = "ZSHARD_TRACE_DIR"  # zlaunch --trace DIR
LOG_DIR_ENV = "ZSHARD_LOG_DIR"  # zlaunch --log-dir DIR: the run log and the report
RUN_LOG = "metrics.jsonl"
COMMS_FILE = "comms.json"
TAG = "Train/Samples/"


def _now_us():
    return time.monotonic_ns() // 1000  # CLOCK_MONOTONIC: the C++ trace's clock


def _trace_file():
    """zshard.trace_file, imported when first needed: `python3 -m
    zshard.trace_file` runs it as a script, which must not be imported with
    the package before that."""
    from zshard import trace_file
    return trace_file


def _monitor_dir(block):
    """DeepSpeed's output_path/job_name."""
    return os.path.join(block.output_path, block.job_name)


def _open_wandb(o):
    """The wandb run (rank 0), or a ConfigError on every rank when wandb is
    enabled and not importable."""
    try:
        import wandb
    except ImportError:
        raise _C.ConfigError("wandb.enabled: true, but the wandb package is not importable in this Python "
                             f"({sys.executable}); install it (pip install wandb) or set wandb.enabled "
                             "false") from None
    return wandb


def _close_at_exit(ref):
    observer = ref()
    if observer is not None:
        observer.close()


class _Window:
    """Microseconds spent in each phase since it was last taken."""
    KEYS = ("forward", "backward", "backward_waits", "step", "step_waits")

    def __init__(self):
        self.take()

    def take(self):
        out = getattr(self, "values", None)
        self.values = dict.fromkeys(self.KEYS, 0)
        self.started = time.monotonic()
        return out


class Observer:
    """One engine's watchers. Every rank times its phases and feeds the
    trace and comms log; rank 0 writes the monitors and the run log."""

    def __init__(self, cfg, session, model, topo):
        o = cfg.observe
        self._session = session
        self._rank = topo["rank"]
        self._world = topo["world_size"]
        self._wall_clock = session.wall_clock_breakdown
        self._wandb = _open_wandb(o) if o.wandb else None  # refused on every rank alike
        self._wandb_run = None
        self._monitors = self._run_log = None
        log_dir = os.environ.get(LOG_DIR_ENV) or None
        if self._rank == 0:
            self._open_writers(o, log_dir)
        self._log_dir = log_dir
        self._comms = o.comms_logger
        if self._comms:
            _C.comms_configure(True, o.comms_verbose, [] if o.comms_prof_all else list(o.comms_prof_ops))
        self._trace_dir = (o.trace_dir if o.trace else os.environ.get(TRACE_DIR_ENV)) or None
        self._trace_window = (o.trace_first, o.trace_last)
        self._trace_written = False
        if self._trace_dir is not None:
            _C.trace_name_thread("main")
            self._set_recording(1)
        self._flops = (flops_profiler.Profiler(model, o, self._world)
                       if o.flops_profiler and self._rank == 0 else None)
        self._wants_loss = self._rank == 0 and (self._monitors is not None or self._run_log is not None)
        self._loss = None
        self._window = _Window()  # this optimizer step's
        self.totals = _Window()  # since the last steps_per_print line
        self._waited = _C.waited_us()
        self._closed = False
        atexit.register(_close_at_exit, weakref.ref(self))

    def __del__(self):
        self.close()

    def _open_writers(self, o, log_dir):
        csv_dir = _monitor_dir(o.csv) if o.csv.enabled else ""
        tb_dir = _monitor_dir(o.tensorboard) if o.tensorboard.enabled else ""
        if csv_dir or tb_dir:
            self._monitors = _C.MonitorWriter(csv_dir=csv_dir, tensorboard_dir=tb_dir)
        if log_dir is not None:
            self._run_log = _C.MonitorWriter(run_log=os.path.join(log_dir, RUN_LOG))
        if self._wandb is not None:
            self._wandb_run = self._wandb.init(project=o.wandb_project, group=o.wandb_group or None,
                                               entity=o.wandb_team or None)

    # -- phases -------------------------------------------------------------

    def forward_start(self, global_steps):
        if self._flops is not None:
            self._flops.forward_start(global_steps)
        return _now_us()

    def forward_end(self, begin):
        self._add("forward", begin, _now_us())
        if self._flops is not None:
            self._flops.forward_end()

    def backward_start(self, loss):
        if self._wants_loss:
            value = loss.detach().float().mean()
            self._loss = value if self._loss is None else self._loss + value
        return _now_us(), _C.waited_us()

    def backward_end(self, begin):
        start, waited = begin
        self._add("backward", start, _now_us())
        self._add_waits("backward_waits", waited)

    def step_start(self):
        return _now_us(), _C.waited_us()

    def step_end(self, begin, stepped_boundary, engine):
        """After engine.step(); `stepped_boundary`: the optimizer step
        ended an accumulation window (applied or skipped)."""
        start, waited = begin
        end = _now_us()
        self._add("step", start, end)
        self._add_waits("step_waits", waited)
        if not stepped_boundary:
            return
        window_seconds = time.monotonic() - self._window.started
        values = self._window.take()
        if self._flops is not None:
            self._flops.step_end(engine, window_seconds)
        if self._rank == 0:
            self._write_step(engine, values, window_seconds)
        if self._trace_dir is not None:
            self._trace_after_step(engine.global_steps)

    _SLICES = {"forward": "forward", "backward": "backward", "step": "engine.step"}

    def _add(self, key, begin, end):
        micros = end - begin
        self._window.values[key] += micros
        self.totals.values[key] += micros
        if self._trace_dir is not None:
            _C.trace_slice(self._SLICES[key], key, begin, end)

    def _add_waits(self, key, since):
        micros = _C.waited_us() - since
        self._window.values[key] += micros
        self.totals.values[key] += micros

    # -- what rank 0 writes ---------------------------------------------------

    def _write_step(self, engine, values, window_seconds):
        s = self._session
        samples = engine.global_samples
        events = []
        if self._loss is not None:  # DeepSpeed: the loss averaged over the window's micro steps
            loss = self._loss.item() / s.gradient_accumulation_steps
            events.append((TAG + "train_loss", loss, samples - s.train_batch_size))
            self._loss = None
        events += [(TAG + "lr", engine.get_lr()[0], samples), (TAG + "loss_scale", s.loss_scale, samples),
                   (TAG + "grad_norm", s.grad_norm, samples), (TAG + "skipped_steps", s.skipped_steps, samples),
                   (TAG + "samples_per_sec", s.train_batch_size / max(window_seconds, 1e-9), samples)]
        ms = {k: v / 1e3 for k, v in values.items()}
        timings = [(TAG + "elapsed_time_ms_forward", ms["forward"], samples),
                   (TAG + "elapsed_time_ms_backward", ms["backward"], samples),
                   (TAG + "elapsed_time_ms_backward_inner", ms["backward"] - ms["backward_waits"], samples),
                   (TAG + "elapsed_time_ms_backward_allreduce", ms["backward_waits"], samples),
                   (TAG + "elapsed_time_ms_step", ms["step"], samples)]
        shown = events + timings if self._wall_clock else events
        if self._monitors is not None:
            self._monitors.write(shown)
        if self._wandb_run is not None:
            self._wandb_run.log({tag: value for tag, value, _ in shown}, step=samples)
        if self._run_log is not None:
            extra = [(TAG + "global_step", engine.global_steps, samples),
                     (TAG + "elapsed_time_ms_exposed_comm", ms["backward_waits"] + ms["step_waits"], samples),
                     (TAG + "elapsed_time_ms_optimizer", ms["step"] - ms["step_waits"], samples)]
            self._run_log.write(events + timings + extra)

    def write_events(self, events):
        """DeepSpeed's engine.monitor.write_events: a script's own (tag,
        value, step) events to the enabled monitors (rank 0 writes)."""
        if self._rank != 0:
            return
        events = [(str(tag), float(value), int(step)) for tag, value, step in events]
        for writer in (self._monitors, self._run_log):
            if writer is not None:
                writer.write(events)
        if self._wandb_run is not None:
            for tag, value, step in events:
                self._wandb_run.log({tag: value}, step=step)

    @property
    def monitoring(self):
        """Whether any monitor (csv_monitor, tensorboard, wandb) is on."""
        return self._monitors is not None or self._wandb is not None

    def flush(self):
        """Everything written so far on disk (checkpoints call it)."""
        for writer in (self._monitors, self._run_log):
            if writer is not None:
                writer.flush()

    # -- the trace ------------------------------------------------------------

    def _set_recording(self, next_step):
        first, last = self._trace_window
        _C.trace_set_recording((first == 0 or next_step >= first) and (last == 0 or next_step <= last))

    def _trace_after_step(self, global_steps):
        self._set_recording(global_steps + 1)
        if self._trace_window[1] and global_steps == self._trace_window[1]:
            self._write_trace()  # the window is over: on disk now, whatever happens later

    def _write_trace(self):
        if self._trace_written:
            return
        self._trace_written = True
        _C.trace_set_recording(False)
        try:
            path = _trace_file().rank_path(self._trace_dir, self._rank)
            os.makedirs(self._trace_dir, exist_ok=True)
            _C.trace_write(path, self._rank)
        except (OSError, _C.ZshardError) as e:
            warnings.warn(f"zshard.trace.output_path ({self._trace_dir}): cannot write the trace: {e}")

    # -- the end --------------------------------------------------------------

    def close(self):
        """At exit: the comms table (rank 0), its rows in the monitor and the
        run log, the trace file (merged by rank 0), every writer flushed."""
        if self._closed:
            return
        self._closed = True
        if self._comms:
            self._write_comms()
        if self._trace_dir is not None:
            self._write_trace()
            if self._rank == 0:
                _trace_file().merge_when_complete(self._trace_dir, self._world)
        self.flush()
        if self._wandb_run is not None:
            self._wandb_run.finish()

    def _write_comms(self):
        if self._rank != 0:
            return
        comm.log_summary()
        rows = _C.comms_summary()
        samples = self._session.global_steps * self._session.train_batch_size
        events = []
        for r in rows:
            name = f"Comms/{r['op']}/{r['bytes']}B/"
            events += [(name + "count", r["count"], samples), (name + "avg_latency_ms", r["mean_us"] / 1e3, samples),
                       (name + "busbw_gbps", r["busbw_gbps"], samples)]
        if self._monitors is not None:
            self._monitors.write(events)
        if self._log_dir is not None:
            _trace_file().write_json(os.path.join(self._log_dir, COMMS_FILE), {"world_size": self._world, "rows": rows})
