from deepspeed.moe import layer, utils  # noqa: F401
