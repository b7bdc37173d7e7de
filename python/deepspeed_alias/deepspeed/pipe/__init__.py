"""deepspeed.pipe: DeepSpeed's pipeline parallelism, which zshard lacks."""
from deepspeed._unsupported import refused_class

_FEATURE = "pipeline parallelism (PipelineModule and the pipeline engine)"
PipelineModule = refused_class("deepspeed.pipe.PipelineModule", _FEATURE)
LayerSpec = refused_class("deepspeed.pipe.LayerSpec", _FEATURE)
TiedLayerSpec = refused_class("deepspeed.pipe.TiedLayerSpec", _FEATURE)
