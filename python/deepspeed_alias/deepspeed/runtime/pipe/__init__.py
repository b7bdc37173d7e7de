"""deepspeed.runtime.pipe: the same refused names as deepspeed.pipe."""
from deepspeed._unsupported import refused_class
from deepspeed.pipe import _FEATURE, LayerSpec, PipelineModule, TiedLayerSpec

PipelineEngine = refused_class("deepspeed.runtime.pipe.PipelineEngine", _FEATURE)
