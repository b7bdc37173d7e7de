from deepspeed.ops import adam  # noqa: F401
