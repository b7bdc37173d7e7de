#pragma once

#include <functional>
#include <string>

namespace zshard::rendezvous {

// Where this process sits in the job.
struct Topology {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_size = 1;
  int node_rank = 0;
  int node_count = 1;
  // Where rank 0 (or node 0's controller) serves the TcpStore; empty under
  // PMIx until exchanged through it, and for a single process.
  std::string master_addr;
  int master_port = 0;
  std::string source;  // "zlaunch", "pmix", "slurm", "torchrun" or "single"
};

// Reads an environment variable (nullptr when unset); tests pass a map.
using EnvReader = std::function<const char*(const char*)>;

// Builds the topology from the first source present, in order: zlaunch's
// ZSHARD_* variables; PMIx (srun --mpi=pmix, mpirun); SLURM_* inside a job
// step (SLURM_STEP_NODELIST expanded for the master; port from MASTER_PORT
// or derived from SLURM_JOB_ID); torchrun's RANK/WORLD_SIZE/LOCAL_RANK/...;
// else a single process. A present but malformed or inconsistent variable
// is an Error naming it — never a silent fallback to another source.
Topology detectTopology(const EnvReader& env = nullptr);

// For the PMIx source (kept apart so tests can run without a PMIx server).
Topology topologyFromPmix();

}  // namespace zshard::rendezvous
