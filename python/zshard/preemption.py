"""Preemption (the config's "zshard": {"checkpoint": {"save_on_signal":
true, "dir": ...}}): SIGUSR1 or SIGTERM (Slurm's --signal=B:USR1@120, or
its time limit; zlaunch forwards each once) only sets a flag; at the next
optimizer step every rank learns whether any rank got one (one tiny
collective per step, so all act at the same step), saves a checkpoint to
the directory and exits with EXIT_CODE, which zlaunch passes on and a batch
script turns into `scontrol requeue`. With "resume": "latest" the next run
loads that directory's latest checkpoint at initialize(), on any rank
count."""
import os
import signal
import sys
import threading
import warnings

EXIT_CODE = 75  # EX_TEMPFAIL: saved, run me again
SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class Preemption:
    def __init__(self, engine, directory):
        self._engine = engine
        self._directory = directory
        self.signal = None
        if threading.current_thread() is not threading.main_thread():
            warnings.warn("zshard.checkpoint.save_on_signal: initialize() ran outside the main thread, where "
                          "Python cannot take signals; preemption saves are off")
            return
        for s in SIGNALS:
            signal.signal(s, self._on_signal)

    def _on_signal(self, signum, frame):
        self.signal = signum

    def after_step(self):
        """Collective: every rank calls it after each optimizer step."""
        if not self._engine._session.any_rank(self.signal is not None):
            return
        self._engine.save_checkpoint(self._directory)
        if self._engine.global_rank == 0:
            why = signal.Signals(self.signal).name if self.signal else "a signal on another rank"
            print(f"[zshard] preempted ({why}): checkpoint saved to {self._directory} at global step "
                  f"{self._engine.global_steps}; exiting {EXIT_CODE} so that the job is requeued", file=sys.stderr,
                  flush=True)
        sys.exit(EXIT_CODE)


def resume_if_saved(engine, directory):
    """resume "latest": the directory's latest checkpoint, when it has one."""
    if not os.path.exists(os.path.join(directory, "latest")):
        return None
    path, _ = engine.load_checkpoint(directory)
    if engine.global_rank == 0:
        print(f"[zshard] resumed from {path} at global step {engine.global_steps} (resume \"latest\")",
              file=sys.stderr, flush=True)
    return path
