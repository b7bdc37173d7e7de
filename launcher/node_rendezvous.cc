#include "launcher/node_rendezvous.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/hex.h"
#include "runtime/rendezvous/hmac.h"
#include "runtime/rendezvous/hostlist.h"
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

// Connects within the rendezvous timeout: a node 0 that never starts is a
// clear error then, not a 5-minute silence.
void connect(NodePlan& plan, const LaunchOptions& o) {
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.rendezvous_timeout * 1000));
  try {
    plan.store = std::make_unique<rendezvous::TcpStore>(plan.store_host, plan.store_port,
                                                        plan.token, timeout);
  } catch (const TimeoutError& e) {
    throw TimeoutError("rendezvous: node 0 (" + plan.store_host + ":" +
                       std::to_string(plan.store_port) + ") never came up within " +
                       std::to_string(static_cast<int>(o.rendezvous_timeout)) +
                       " s (--rendezvous-timeout): start zlaunch on node 0 too, with the same "
                       "--master-addr/--master-port; " +
                       e.what());
  }
}

NodePlan viaPmix(const LaunchOptions& o, int local_size) {
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
  connect(plan, o);
  return plan;
}

NodePlan viaSlurm(const LaunchOptions& o, int local_size) {
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
  connect(plan, o);
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
  connect(plan, o);
  return plan;
}

}  // namespace

NodePlan::NodePlan() = default;
NodePlan::NodePlan(NodePlan&&) noexcept = default;
NodePlan& NodePlan::operator=(NodePlan&&) noexcept = default;
NodePlan::~NodePlan() = default;

namespace {

NodePlan findNodes(const LaunchOptions& options, int local_size) {
  if (rendezvous::PmixClient::available()) return viaPmix(options, local_size);
  const char* step = std::getenv("SLURM_STEP_ID");
  const char* tasks = std::getenv("SLURM_NTASKS");
  if (step != nullptr && tasks != nullptr && std::atoi(tasks) > 1)
    return viaSlurm(options, local_size);
  return viaOptions(options, local_size);
}

// What each node was started with, to compare at the rendezvous.
struct NodeRecord {
  std::string host;
  int nnodes = 0, nproc = 0;
  std::string config;  // a digest of the --config file's bytes ("none" without one)

  std::string encode() const {
    return host + " " + std::to_string(nnodes) + " " + std::to_string(nproc) + " " + config;
  }
  static NodeRecord decode(const std::string& text) {
    NodeRecord r;
    std::istringstream in(text);
    in >> r.host >> r.nnodes >> r.nproc >> r.config;
    return r;
  }
};

NodeRecord myRecord(const NodePlan& plan, const LaunchOptions& o) {
  NodeRecord r{hostName(), plan.mode == "explicit" ? o.nnodes : plan.node_count, plan.local_size,
               "none"};
  if (!o.config_path.empty()) {
    std::ifstream in(o.config_path, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    r.config = toHex(rendezvous::hmacSha256("zlaunch-config", bytes.str())).substr(0, 12);
  }
  return r;
}

// One line naming the first setting node `r` was started with that differs
// from node 0's; "" when they agree. Worker counts may differ only under
// PMIx (each node publishes its own).
std::string difference(const NodePlan& plan, int r, const NodeRecord& mine,
                       const NodeRecord& zero) {
  const std::string who = "node " + std::to_string(r) + " (" + mine.host + ")";
  const std::string zero_who = "node 0 (" + zero.host + ")";
  if (mine.nnodes != zero.nnodes) {
    return "rendezvous: " + who + " was started with --nnodes " + std::to_string(mine.nnodes) +
           ", " + zero_who + " with --nnodes " + std::to_string(zero.nnodes) +
           "; start every node with the same";
  }
  if (plan.mode != "pmix" && mine.nproc != zero.nproc) {
    return "rendezvous: " + who + " runs " + std::to_string(mine.nproc) + " workers, " + zero_who +
           " " + std::to_string(zero.nproc) +
           " (--nproc-per-node or the node's GPUs); every node must run the same number";
  }
  if (mine.config != zero.config) {
    return "rendezvous: " + who + " was given another --config than " + zero_who + " (digest " +
           mine.config + " vs " + zero.config + "); give every node the same file";
  }
  return "";
}

// Every node publishes what it was started with; node 0 waits for all
// (within --rendezvous-timeout), compares them, and publishes a verdict
// every node reads and reports the same way: a missing node, or the first
// setting that differs, named, before any worker starts.
void checkNodesAgree(NodePlan& plan, const LaunchOptions& o) {
  if (plan.node_count <= 1) return;
  rendezvous::Store& store = *plan.store;
  const auto limit = std::chrono::milliseconds(static_cast<int64_t>(o.rendezvous_timeout * 1000));
  const NodeRecord mine = myRecord(plan, o);
  store.set("launch/node/" + std::to_string(plan.node_rank), mine.encode());
  std::string verdict;
  if (plan.node_rank == 0) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::vector<int> missing;
    for (int r = 1; r < plan.node_count; ++r) {
      const auto left = std::max(std::chrono::milliseconds(0),
                                 std::chrono::duration_cast<std::chrono::milliseconds>(
                                     deadline - std::chrono::steady_clock::now()));
      std::string record;
      try {
        record = store.get("launch/node/" + std::to_string(r), left);
      } catch (const TimeoutError&) {
        missing.push_back(r);
        continue;
      }
      if (verdict.empty()) verdict = difference(plan, r, NodeRecord::decode(record), mine);
    }
    if (!missing.empty()) {
      // Under Slurm the allocation names each node's host.
      const char* nodelist = std::getenv("SLURM_JOB_NODELIST");
      const std::vector<std::string> hosts =
          nodelist != nullptr ? rendezvous::expandHostlist(nodelist) : std::vector<std::string>{};
      std::string list;
      for (int r : missing) {
        list += (list.empty() ? "" : ", ") + std::to_string(r);
        if (static_cast<size_t>(r) < hosts.size()) list += " (" + hosts[r] + ")";
      }
      verdict = "rendezvous: node(s) " + list + " of " + std::to_string(plan.node_count) +
                " never joined within " + std::to_string(static_cast<int>(o.rendezvous_timeout)) +
                " s (--rendezvous-timeout); start zlaunch on every node (node 0 is " + mine.host +
                ", store " + plan.store_host + ":" + std::to_string(plan.store_port) + ")";
    }
    store.set("launch/verdict", verdict.empty() ? "ok" : verdict);
    if (!verdict.empty()) {
      // Let the nodes that came read it before the store goes down.
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
      while (store.add("launch/verdict_read", 0) <
                 plan.node_count - 1 - static_cast<int64_t>(missing.size()) &&
             std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      throw Error(verdict);
    }
    return;
  }
  verdict = store.get("launch/verdict", limit + std::chrono::seconds(10));
  store.add("launch/verdict_read", 1);
  if (verdict != "ok") throw Error(verdict);
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
  checkNodesAgree(plan, options);
  shareTorchPort(plan);
  return plan;
}

}  // namespace zshard::launcher
