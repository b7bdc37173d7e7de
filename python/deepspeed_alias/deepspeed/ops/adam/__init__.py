"""deepspeed.ops.adam: FusedAdam and DeepSpeedCPUAdam as client optimizers
for initialize(optimizer=...): their settings become zshard's fused Adam
(zshard/client_optimizer.py reads them); the engine steps, not they."""
import torch

from zshard import _C


class _ZshardAdam(torch.optim.Optimizer):
    def __init__(self, params, lr, bias_correction, betas, eps, weight_decay, amsgrad, adam_w_mode):
        if amsgrad:
            raise _C.ConfigError(f"{type(self).__name__}(amsgrad=True): AMSGrad is not supported by zshard")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self.adam_w_mode = adam_w_mode
        self.bias_correction = bias_correction

    def zshard_optimizer_type(self):
        """The config's optimizer type and the flags the groups lack."""
        return "Adam", {"adam_w_mode": self.adam_w_mode, "bias_correction": self.bias_correction}

    def step(self, closure=None):
        raise _C.ZshardError(f"{type(self).__name__}.step(): pass it to initialize(optimizer=...) and call "
                             "engine.step()")


class FusedAdam(_ZshardAdam):
    def __init__(self, params, lr=1e-3, bias_correction=True, betas=(0.9, 0.999), eps=1e-8, adam_w_mode=True,
                 weight_decay=0., amsgrad=False, set_grad_none=True):
        super().__init__(params, lr, bias_correction, betas, eps, weight_decay, amsgrad, adam_w_mode)


class DeepSpeedCPUAdam(_ZshardAdam):
    def __init__(self, model_params, lr=1e-3, bias_correction=True, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, adamw_mode=True, fp32_optimizer_states=True):
        super().__init__(model_params, lr, bias_correction, betas, eps, weight_decay, amsgrad, adamw_mode)
