"""zshard: a ZeRO sharded-optimizer runtime with DeepSpeed's engine API.

This package is the Python face of the C++ runtime (zshard._C): the build,
config validation, the job topology, and DeepSpeed's initialize() / engine
for ZeRO stages 0-2.
"""
from zshard._C import ConfigError, ZshardError, build_report, check_config, topology, version
from zshard import comm
from zshard.comm import init_distributed
from zshard.engine import ZshardEngine, add_config_arguments, initialize

__version__ = version()

__all__ = ["ConfigError", "ZshardError", "ZshardEngine", "add_config_arguments", "build_report", "check_config",
           "comm", "init_distributed", "initialize", "topology", "__version__"]
