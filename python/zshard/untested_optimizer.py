"""A client optimizer of a class zshard has no fused twin of, run as
DeepSpeed runs it under "zero_allow_untested_optimizer": true: on each
rank's fp32 shard. The engine still reduces, unscales, clips and skips
overflowing steps; at each applied step the client's class (rebuilt over
the shard) steps views of the shard's master weights, whose .grad are the
shard's averaged fp32 gradients, and the engine writes the result to the
model and all-gathers it.

The shard is a flat range of the flattened parameters, so each group's
pieces are 1-D views: right for elementwise optimizers (Adagrad, RMSprop,
Adamax, NAdam, RAdam, ...), not for those that use a parameter's shape
(LBFGS, Adafactor's factored moments), as in DeepSpeed. The client's own
param_groups stay the live ones (schedulers write them); their settings are
copied to the shard's optimizer before each step. Its state is per rank:
saved in each rank's checkpoint state, resumed on the same number of ranks.
"""
import torch
import torch.utils.dlpack

from zshard import _C


def check_allowed(client, cfg):
    if not cfg.zero_allow_untested_optimizer:
        raise _C.ConfigError(
            f"optimizer: a client {type(client).__name__} has no fused twin in zshard (Adam, AdamW, SGD, "
            "FusedAdam); set \"zero_allow_untested_optimizer\": true in the config to run it on each rank's "
            "fp32 shard as DeepSpeed does (elementwise optimizers only), or use one of those")


class ShardClientOptimizer:
    """The client's class stepping this rank's shard of `session`."""

    def __init__(self, client, session, stepped_groups):
        shard = session.external_shard()
        master = torch.utils.dlpack.from_dlpack(shard["master"])
        grad = torch.utils.dlpack.from_dlpack(shard["grad"])
        pieces = [[] for _ in stepped_groups]
        for offset, numel, group in shard["runs"]:
            view = master[offset:offset + numel]
            view.grad = grad[offset:offset + numel]
            pieces[group].append(view)
        self._client_groups = stepped_groups  # the live dicts schedulers write
        groups = [dict(_settings(g), params=p) for g, p in zip(stepped_groups, pieces)]
        try:
            self._inner = type(client)(groups, **client.defaults)
        except TypeError as e:
            raise _C.ConfigError(f"optimizer: could not rebuild the client {type(client).__name__} over the shard "
                                 f"as {type(client).__name__}(param_groups, **defaults): {e}") from e
        self._cuda = master.is_cuda
        session.set_external_optimizer(type(client).__name__, self._step)

    def _step(self):
        for mine, theirs in zip(self._inner.param_groups, self._client_groups):
            mine.update(_settings(theirs))
        self._inner.step()
        if self._cuda:  # the engine reads the weights on its own stream next
            torch.cuda.current_stream().synchronize()

    def state_dict(self):
        return self._inner.state_dict()

    def load_state_dict(self, state):
        self._inner.load_state_dict(state)


def _settings(group):
    return {k: v for k, v in group.items() if k != "params"}
