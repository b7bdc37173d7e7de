"""What initialize() returns as its optimizer and scheduler: torch-shaped
views of the engine's fused optimizer, which steps each rank's shard.

EngineOptimizer.param_groups are live: engine.step() steps each group with
its "lr", which is what torch and HuggingFace schedulers write; the
config's schedule writes it back after each applied step. With a client
torch optimizer the groups are that optimizer's own dicts, so a scheduler
built on it drives the engine. step() belongs to the engine.
ConfigScheduler is the config's schedule seen from the script.
"""
import torch

from zshard import _C


class EngineOptimizer(torch.optim.Optimizer):
    def __init__(self, groups, defaults, client=None):
        super().__init__(groups, defaults)
        if client is not None:
            self.param_groups = client.param_groups  # the same dicts: schedulers on it reach here
        # The groups the engine steps, in its order (a group of frozen
        # parameters only has no place there).
        self._stepped = [i for i, g in enumerate(self.param_groups) if any(p.requires_grad for p in g["params"])]
        self._built = True

    def add_param_group(self, param_group):
        if getattr(self, "_built", False):
            raise _C.ZshardError("optimizer.add_param_group(): the engine's parameters are fixed at "
                                 "initialize(); pass every group in model_parameters (or the client optimizer)")
        super().add_param_group(param_group)

    def step(self, closure=None):
        raise _C.ZshardError("optimizer.step(): the engine steps the sharded optimizer; call engine.step()")

    def lrs_for_step(self):
        """The lr of each group the engine steps, for its next step."""
        groups = self.param_groups
        if len(groups) < len(self._stepped) or (self._stepped and self._stepped[-1] >= len(groups)):
            raise _C.ZshardError(f"optimizer.param_groups: {len(groups)} groups, the engine steps "
                                 f"{len(self._stepped)}; do not replace or remove parameter groups")
        return [float(groups[i]["lr"]) for i in self._stepped]

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
