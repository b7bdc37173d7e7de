#include "launcher/node_rendezvous.h"

#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/rendezvous/hmac.h"
#include "runtime/rendezvous/pmix_client.h"
#include "runtime/rendezvous/pmix_store.h"
#include "runtime/rendezvous/socket.h"
#include "runtime/rendezvous/tcp_store.h"
#include "runtime/rendezvous/topology.h"

namespace zshard::launcher {

namespace {

std::string hostName() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) return "127.0.0.1";
  return host;
}

std::string envToken(const char* why) {
  const char* t = std::getenv("ZSHARD_JOB_TOKEN");
  if (t == nullptr || *t == '\0') {
    throw UsageError(
        std::string("ZSHARD_JOB_TOKEN: expected a secret shared by every node's zlaunch (") + why +
        "), got nothing; e.g. export ZSHARD_JOB_TOKEN=$(openssl rand -hex 16) before starting");
  }
  return t;
}

void serveIfNodeZero(NodePlan& plan, int port) {
  if (plan.node_rank == 0) {
    // Only where the other nodes connect (loopback for one node).
    plan.server = std::make_unique<rendezvous::TcpStoreServer>(
        plan.token, rendezvous::listenAddressFor(plan.store_host), port);
    plan.store_port = plan.server->port();
  }
}

void connect(NodePlan& plan) {
  plan.store = std::make_unique<rendezvous::TcpStore>(plan.store_host, plan.store_port, plan.token);
}

NodePlan viaPmix(int local_size) {
  rendezvous::PmixClient& pmix = rendezvous::PmixClient::instance();
  NodePlan plan;
  plan.mode = "pmix";
  plan.node_rank = pmix.rank();  // one controller task per node
  plan.node_count = pmix.size();
  plan.local_size = local_size;
  if (plan.node_rank == 0) {
    plan.token = rendezvous::newJobToken();
    plan.store_host = plan.node_count == 1 ? "127.0.0.1" : hostName();
    serveIfNodeZero(plan, 0);
  }
  // One round: every controller publishes its worker count; node 0 also
  // where the store is and the token (PMIx data stays inside the job).
  std::ostringstream mine;
  mine << local_size;
  if (plan.node_rank == 0)
    mine << " " << plan.store_host << " " << plan.store_port << " " << plan.token;
  rendezvous::PmixStore store;
  store.set("node/" + std::to_string(plan.node_rank), mine.str());
  plan.world_size = 0;
  for (int r = 0; r < plan.node_count; ++r) {
    std::istringstream in(store.get("node/" + std::to_string(r)));
    int count = 0;
    in >> count;
    if (r < plan.node_rank) plan.rank_offset += count;
    plan.world_size += count;
    if (r == 0) in >> plan.store_host >> plan.store_port >> plan.token;
  }
  connect(plan);
  return plan;
}

NodePlan viaSlurm(int local_size) {
  const rendezvous::Topology t = rendezvous::detectTopology();
  NodePlan plan;
  plan.mode = "slurm";
  plan.node_rank = t.rank;  // one controller task per node
  plan.node_count = t.world_size;
  plan.local_size = local_size;
  plan.rank_offset = t.rank * local_size;
  plan.world_size = t.world_size * local_size;
  plan.store_host = t.master_addr;
  plan.store_port = t.master_port;
  plan.token = envToken("srun without --mpi=pmix has no private channel");
  serveIfNodeZero(plan, plan.store_port);
  connect(plan);
  return plan;
}

NodePlan viaOptions(const LaunchOptions& o, int local_size) {
  NodePlan plan;
  plan.mode = "explicit";
  plan.node_rank = o.node_rank;
  plan.node_count = o.nnodes;
  plan.local_size = local_size;
  plan.rank_offset = o.node_rank * local_size;
  plan.world_size = o.nnodes * local_size;
  plan.store_host = o.nnodes == 1 ? "127.0.0.1" : o.master_addr;
  plan.store_port = o.master_port;
  plan.token = o.nnodes == 1 ? rendezvous::newJobToken() : envToken("--nnodes > 1");
  serveIfNodeZero(plan, plan.store_port);
  connect(plan);
  return plan;
}

}  // namespace

NodePlan::NodePlan() = default;
NodePlan::NodePlan(NodePlan&&) noexcept = default;
NodePlan& NodePlan::operator=(NodePlan&&) noexcept = default;
NodePlan::~NodePlan() = default;

namespace {

NodePlan findNodes(const LaunchOptions& options, int local_size) {
  if (rendezvous::PmixClient::available()) return viaPmix(local_size);
  const char* step = std::getenv("SLURM_STEP_ID");
  const char* tasks = std::getenv("SLURM_NTASKS");
  if (step != nullptr && tasks != nullptr && std::atoi(tasks) > 1) return viaSlurm(local_size);
  return viaOptions(options, local_size);
}

// Node 0 asks the kernel for a free port (torch's rank 0 binds it soon
// after, on this host) and publishes it in the job store.
void shareTorchPort(NodePlan& plan) {
  constexpr const char* kKey = "launch/torch_master_port";
  if (plan.node_rank == 0) {
    const int port = rendezvous::boundPort(rendezvous::listenTcp("0.0.0.0", 0));
    plan.store->set(kKey, std::to_string(port));
  }
  plan.torch_port = std::stoi(plan.store->get(kKey));
}

}  // namespace

NodePlan rendezvousNodes(const LaunchOptions& options, int local_size) {
  NodePlan plan = findNodes(options, local_size);
  shareTorchPort(plan);
  return plan;
}

}  // namespace zshard::launcher
