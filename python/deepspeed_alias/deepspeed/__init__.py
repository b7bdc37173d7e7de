"""zshard's `deepspeed` alias: `import deepspeed` in a DeepSpeed script
resolves here when zlaunch runs it and no real DeepSpeed is installed
(zlaunch --deepspeed-alias auto|on|off). The names below are zshard's
engine API; `__version__` is the DeepSpeed API level zshard follows
(zshard.__version__ stays zshard's own). Features zshard lacks fail where
they are used, naming themselves."""
from zshard import add_config_arguments, init_distributed, initialize
from zshard.engine import ZshardEngine as DeepSpeedEngine

from deepspeed import accelerator, comm, moe, ops, runtime, utils, zero

__version__ = "0.14.5"
__zshard_alias__ = True

__all__ = ["DeepSpeedEngine", "accelerator", "add_config_arguments", "comm", "init_distributed", "initialize", "moe",
           "ops", "runtime", "utils", "zero", "__version__"]
