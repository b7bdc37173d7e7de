"""deepspeed.compression: DeepSpeed's compression library, which zshard lacks."""
