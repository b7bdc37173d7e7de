"""deepspeed.compression.compress: refused (zshard has no compression)."""
from deepspeed._unsupported import refused_function

_FEATURE = "model compression (quantization, pruning, layer reduction)"
init_compression = refused_function("deepspeed.compression.compress.init_compression", _FEATURE)
redundancy_clean = refused_function("deepspeed.compression.compress.redundancy_clean", _FEATURE)
student_initialization = refused_function("deepspeed.compression.compress.student_initialization", _FEATURE)
