"""What initialize() returns as its optimizer and scheduler: torch-shaped
views of the engine's fused optimizer, which steps each rank's shard.

EngineOptimizer.param_groups are live: engine.step() steps with the
groups' "lr" (all groups must agree), which is what torch and HuggingFace
schedulers write; the config's schedule writes it back after each applied
step. With a client torch optimizer the groups are that optimizer's own
dicts, so a scheduler built on it drives the engine. step() belongs to the
engine. ConfigScheduler is the config's schedule seen from the script.
"""
import torch

from zshard import _C


class EngineOptimizer(torch.optim.Optimizer):
    def __init__(self, groups, defaults, client=None):
        super().__init__(groups, defaults)
        if client is not None:
            self.param_groups = client.param_groups  # the same dicts: schedulers on it reach here

    def step(self, closure=None):
        raise _C.ZshardError("optimizer.step(): the engine steps the sharded optimizer; call engine.step()")

    def lr_for_step(self):
        """The lr the next optimizer step uses."""
        lrs = [g["lr"] for g in self.param_groups]
        if any(lr != lrs[0] for lr in lrs):
            raise _C.ZshardError(f"optimizer.param_groups have different lr ({lrs}): per-group learning rates "
                                 "are not supported yet; give every group the same lr")
        return float(lrs[0])

    def set_lr(self, lr):
        for g in self.param_groups:
            g["lr"] = lr

    def state_dict(self):
        """The groups' settings (the moments live in the engine's checkpoint)."""
        return {"param_groups": [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise _C.ZshardError(f"optimizer.load_state_dict: {len(groups)} parameter groups saved, "
                                 f"{len(self.param_groups)} here")
        for mine, saved in zip(self.param_groups, groups):
            mine.update(saved)


class ConfigScheduler:
    """The config's "scheduler" block; engine.step() advances it."""

    def __init__(self, engine):
        self._engine = engine

    def get_lr(self):
        return self._engine.get_lr()

    def get_last_lr(self):
        return self._engine.get_lr()

    def step(self, *args, **kwargs):
        raise _C.ZshardError("lr_scheduler.step(): the config's scheduler advances with engine.step(); do not "
                             "step it yourself")

    def state_dict(self):
        raise _C.ZshardError("lr_scheduler.state_dict(): the config's scheduler position is saved by "
                             "engine.save_checkpoint()")
