"""deepspeed.runtime.lr_schedules: DeepSpeed's schedulers as client
schedulers (initialize(lr_scheduler=...)). Each writes its optimizer's
param_groups lr from the same formulas as the config's "scheduler" block
(computed by zshard's runtime, _C.scheduled_lr, so the two never differ);
engine.step() steps it after each applied step. OneCycle's momentum
cycling needs the config block: OneCycle is refused here."""
import json

from zshard import _C


class _Schedule:
    TYPE = None

    def __init__(self, optimizer, params, last_batch_iteration=-1):
        self.optimizer = optimizer
        self._block = json.dumps({"type": self.TYPE, "params": params})
        self._base_lr = optimizer.param_groups[0]["lr"]
        self.last_batch_iteration = last_batch_iteration
        self._apply()

    def _apply(self):
        lr = _C.scheduled_lr(self._block, self._base_lr, self.last_batch_iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._last_lr = [lr] * len(self.optimizer.param_groups)

    def step(self, last_batch_iteration=None):
        self.last_batch_iteration = (self.last_batch_iteration + 1 if last_batch_iteration is None
                                     else last_batch_iteration)
        self._apply()

    def get_lr(self):
        return list(self._last_lr)

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {"last_batch_iteration": self.last_batch_iteration}

    def load_state_dict(self, state):
        self.last_batch_iteration = state["last_batch_iteration"]
        self._apply()


class WarmupLR(_Schedule):
    TYPE = "WarmupLR"

    def __init__(self, optimizer, warmup_min_lr=0.0, warmup_max_lr=0.001, warmup_num_steps=1000,
                 warmup_type="log", last_batch_iteration=-1):
        super().__init__(optimizer, dict(warmup_min_lr=warmup_min_lr, warmup_max_lr=warmup_max_lr,
                                         warmup_num_steps=warmup_num_steps, warmup_type=warmup_type),
                         last_batch_iteration)


class WarmupDecayLR(_Schedule):
    TYPE = "WarmupDecayLR"

    def __init__(self, optimizer, total_num_steps, warmup_min_lr=0.0, warmup_max_lr=0.001, warmup_num_steps=1000,
                 warmup_type="log", last_batch_iteration=-1):
        super().__init__(optimizer, dict(total_num_steps=total_num_steps, warmup_min_lr=warmup_min_lr,
                                         warmup_max_lr=warmup_max_lr, warmup_num_steps=warmup_num_steps,
                                         warmup_type=warmup_type), last_batch_iteration)


class WarmupCosineLR(_Schedule):
    TYPE = "WarmupCosineLR"

    def __init__(self, optimizer, total_num_steps, warmup_min_ratio=0.0, warmup_num_steps=1000,
                 cos_min_ratio=0.0001, warmup_type="log", last_batch_iteration=-1):
        super().__init__(optimizer, dict(total_num_steps=total_num_steps, warmup_min_ratio=warmup_min_ratio,
                                         warmup_num_steps=warmup_num_steps, cos_min_ratio=cos_min_ratio,
                                         warmup_type=warmup_type), last_batch_iteration)


class LRRangeTest(_Schedule):
    TYPE = "LRRangeTest"

    def __init__(self, optimizer, lr_range_test_min_lr=1e-3, lr_range_test_step_size=2000,
                 lr_range_test_step_rate=1.0, lr_range_test_staircase=False, last_batch_iteration=-1):
        super().__init__(optimizer, dict(lr_range_test_min_lr=lr_range_test_min_lr,
                                         lr_range_test_step_size=lr_range_test_step_size,
                                         lr_range_test_step_rate=lr_range_test_step_rate,
                                         lr_range_test_staircase=lr_range_test_staircase), last_batch_iteration)


class OneCycle:
    def __init__(self, *args, **kwargs):
        raise _C.ConfigError("deepspeed.runtime.lr_schedules.OneCycle: as a client scheduler it cannot cycle "
                             "the fused optimizer's momentum; write it in the config's \"scheduler\" block")
