#pragma once

#include <memory>
#include <string>

#include "launcher/cli.h"
#include "runtime/rendezvous/store.h"

namespace zshard::rendezvous {
class TcpStoreServer;
}

namespace zshard::launcher {

// This node's place in the job, found by the controllers together, and the
// job store they share (node 0's controller serves it).
struct NodePlan {
  std::string mode;  // "pmix", "slurm" or "explicit"
  int node_rank = 0;
  int node_count = 1;
  int local_size = 1;   // workers on this node
  int rank_offset = 0;  // global rank of this node's local rank 0
  int world_size = 1;
  std::string store_host;
  int store_port = 0;
  std::string token;
  // MASTER_PORT for the workers' torch.distributed (on store_host): a free
  // port of its own, so torch's store never collides with zshard's.
  int torch_port = 0;
  std::unique_ptr<rendezvous::TcpStoreServer> server;  // node 0 only
  std::unique_ptr<rendezvous::Store> store;            // every node
  NodePlan();
  NodePlan(NodePlan&&) noexcept;
  NodePlan& operator=(NodePlan&&) noexcept;
  ~NodePlan();
};

// Under PMIx (srun --mpi=pmix, mpirun): node 0 serves the store on a free
// port with a fresh token and every controller publishes its worker count;
// one PMIx fence, no ssh, no fixed port. Under a Slurm step without PMIx:
// SLURM_* variables, node 0 = first host, port MASTER_PORT or from the job
// id, token from ZSHARD_JOB_TOKEN (required). Otherwise the options; a
// multi-node job then needs ZSHARD_JOB_TOKEN set alike on every node.
// `local_size` is this node's worker count. Node 0 also picks the free
// port torch.distributed gets as MASTER_PORT and shares it with the others.
NodePlan rendezvousNodes(const LaunchOptions& options, int local_size);

}  // namespace zshard::launcher
