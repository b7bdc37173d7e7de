#pragma once

namespace zshard::launcher {

// Plain `zlaunch ...` inside a multi-node Slurm allocation but outside a job
// step (an sbatch script, salloc): replaces this process with
// `srun --nodes=N --ntasks-per-node=1 --mpi=pmix <zlaunch> <same args>`, so
// that one controller runs per node and they meet through PMIx. Returns
// (does nothing) everywhere else: single node, inside a step, no Slurm.
void srunSelfIfAllocation(char** argv);

}  // namespace zshard::launcher
