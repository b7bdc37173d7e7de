"""zshard's `deepspeed` alias: `import deepspeed` in a DeepSpeed script
resolves here when zlaunch runs it and no real DeepSpeed is installed
(zlaunch --deepspeed-alias auto|on|off). The names below are zshard's
engine API; `__version__` is the DeepSpeed API level zshard follows
(zshard.__version__ stays zshard's own). Features zshard lacks fail where
they are used, naming themselves."""
from zshard import add_config_arguments, init_distributed, initialize
from zshard.engine import ZshardEngine as DeepSpeedEngine

from deepspeed import accelerator, comm, compression, moe, ops, pipe, runtime, utils, zero
from deepspeed._unsupported import refused_class, refused_function
from deepspeed.pipe import PipelineModule
from deepspeed.runtime.pipe import PipelineEngine

init_inference = refused_function("deepspeed.init_inference", "DeepSpeed's inference engine")
InferenceEngine = refused_class("deepspeed.InferenceEngine", "DeepSpeed's inference engine")

__version__ = "0.14.5"
__zshard_alias__ = True

__all__ = ["DeepSpeedEngine", "InferenceEngine", "PipelineEngine", "PipelineModule", "accelerator",
           "add_config_arguments", "comm", "compression", "init_distributed", "init_inference", "initialize", "moe",
           "ops", "pipe", "runtime", "utils", "zero", "__version__"]
