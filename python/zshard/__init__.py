"""zshard: a ZeRO sharded-optimizer runtime with DeepSpeed's engine API.

This package is the Python face of the C++ runtime (zshard._C). So far it
exposes the build, config validation and the job topology; the engine API
(zshard.initialize) lands with the Python-integration issue.
"""
from zshard._C import ConfigError, ZshardError, build_report, check_config, topology, version

__version__ = version()

__all__ = ["ConfigError", "ZshardError", "build_report", "check_config", "topology", "__version__"]
