"""deepspeed.comm: zshard.comm (torch.distributed on the job's ranks)."""
from zshard.comm import (ReduceOp, all_gather, all_gather_into_tensor, all_reduce, barrier, broadcast,  # noqa: F401
                         log_summary,
                         get_local_rank, get_rank, get_world_size, init_distributed, is_initialized, new_group,
                         reduce_scatter_tensor)
