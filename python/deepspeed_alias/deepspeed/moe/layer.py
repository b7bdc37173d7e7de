"""deepspeed.moe.layer: DeepSpeed's mixture-of-experts layer, which zshard lacks."""
from deepspeed._unsupported import refused_class

MoE = refused_class("deepspeed.moe.layer.MoE", "mixture of experts (MoE layers and expert parallelism)")
