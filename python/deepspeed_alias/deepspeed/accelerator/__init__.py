"""deepspeed.accelerator.get_accelerator(): the device this rank trains on,
CUDA when torch sees a GPU, else the CPU (zshard's CPU workers)."""
import torch

from zshard import _C


class _Accelerator:
    def __init__(self):
        self._cuda = torch.cuda.is_available()

    def device_name(self, device_index=None):
        name = "cuda" if self._cuda else "cpu"
        return name if device_index is None or not self._cuda else f"{name}:{device_index}"

    def current_device(self):
        return torch.cuda.current_device() if self._cuda else 0

    def current_device_name(self):
        return self.device_name(self.current_device()) if self._cuda else "cpu"

    def device(self, device_index=None):
        return torch.device(self.device_name(device_index))

    def device_count(self):
        return torch.cuda.device_count() if self._cuda else 1

    def set_device(self, device_index):
        if self._cuda:
            torch.cuda.set_device(device_index)

    def is_available(self):
        return True

    def synchronize(self, device_index=None):
        if self._cuda:
            torch.cuda.synchronize(device_index)

    def communication_backend_name(self):
        return "nccl" if self._cuda else "gloo"

    def is_bf16_supported(self):
        return torch.cuda.is_bf16_supported() if self._cuda else True

    def is_fp16_supported(self):
        return self._cuda

    def manual_seed(self, seed):
        torch.manual_seed(seed)

    def empty_cache(self):
        if self._cuda:
            torch.cuda.empty_cache()

    def pin_memory(self, tensor):
        return tensor.pin_memory() if self._cuda else tensor

    def on_accelerator(self, tensor):
        return tensor.device.type == ("cuda" if self._cuda else "cpu")

    def local_rank(self):
        return _C.topology()["local_rank"]


_accelerator = None


def get_accelerator():
    global _accelerator
    if _accelerator is None:
        _accelerator = _Accelerator()
    return _accelerator
