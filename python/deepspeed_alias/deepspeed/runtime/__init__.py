from deepspeed.runtime import lr_schedules  # noqa: F401
