#include "runtime/rendezvous/topology.h"

#include <cstdlib>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/rendezvous/hostlist.h"
#include "runtime/rendezvous/pmix_client.h"

namespace zshard::rendezvous {

namespace {

// Slurm without PMIx has no channel to agree on a port: derive one from the
// job id (same on every node) in the dynamic range, unless MASTER_PORT is set.
constexpr int kSlurmPortBase = 29500;
constexpr int kSlurmPortSpan = 20000;

class Vars {
 public:
  explicit Vars(const EnvReader& env) : env_(env) {}
  bool has(const char* name) const { return env_(name) != nullptr; }
  std::string str(const char* name, const std::string& fallback = "") const {
    const char* v = env_(name);
    return v ? v : fallback;
  }
  int integer(const char* name, int lo, int hi) const {
    const char* v = env_(name);
    if (v == nullptr) throw Error(std::string(name) + ": expected it to be set, got nothing");
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
      throw Error(std::string(name) + ": " +
                  expectedGot("an integer in " + std::to_string(lo) + ".." + std::to_string(hi),
                              "\"" + std::string(v) + "\""));
    }
    return static_cast<int>(n);
  }
  int integerOr(const char* name, int lo, int hi, int fallback) const {
    return has(name) ? integer(name, lo, hi) : fallback;
  }

 private:
  const EnvReader& env_;
};

constexpr int kMax = 1 << 24;

void splitAddress(const std::string& addr, const char* name, Topology& t) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw Error(std::string(name) + ": " + expectedGot("host:port", "\"" + addr + "\""));
  }
  t.master_addr = addr.substr(0, colon);
  t.master_port = std::atoi(addr.c_str() + colon + 1);
}

Topology fromZlaunch(const Vars& v) {
  Topology t;
  t.source = "zlaunch";
  t.world_size = v.integer("ZSHARD_WORLD_SIZE", 1, kMax);
  t.rank = v.integer("ZSHARD_RANK", 0, t.world_size - 1);
  t.local_size = v.integer("ZSHARD_LOCAL_SIZE", 1, t.world_size);
  t.local_rank = v.integer("ZSHARD_LOCAL_RANK", 0, t.local_size - 1);
  t.node_count = v.integer("ZSHARD_NODE_COUNT", 1, t.world_size);
  t.node_rank = v.integer("ZSHARD_NODE_RANK", 0, t.node_count - 1);
  splitAddress(v.str("ZSHARD_STORE_ADDR"), "ZSHARD_STORE_ADDR", t);
  return t;
}

Topology fromSlurm(const Vars& v) {
  Topology t;
  t.source = "slurm";
  t.world_size = v.integer("SLURM_NTASKS", 1, kMax);
  t.rank = v.integer("SLURM_PROCID", 0, t.world_size - 1);
  t.node_count = v.has("SLURM_STEP_NUM_NODES") ? v.integer("SLURM_STEP_NUM_NODES", 1, kMax)
                                               : v.integer("SLURM_NNODES", 1, kMax);
  t.node_rank = v.integer("SLURM_NODEID", 0, t.node_count - 1);
  const char* per_node_var =
      v.has("SLURM_STEP_TASKS_PER_NODE") ? "SLURM_STEP_TASKS_PER_NODE" : "SLURM_TASKS_PER_NODE";
  const std::vector<int> per_node =
      expandTasksPerNode(v.str(per_node_var, std::to_string(t.world_size)));
  t.local_size = per_node.size() > static_cast<size_t>(t.node_rank) ? per_node[t.node_rank] : 1;
  t.local_rank = v.integer("SLURM_LOCALID", 0, t.local_size - 1);
  const std::string nodelist = v.str("SLURM_STEP_NODELIST", v.str("SLURM_JOB_NODELIST"));
  const std::vector<std::string> hosts = expandHostlist(nodelist);
  if (hosts.empty())
    throw Error("SLURM_STEP_NODELIST / SLURM_JOB_NODELIST: expected node names, got none");
  t.master_addr = v.str("MASTER_ADDR", hosts.front());
  t.master_port =
      v.integerOr("MASTER_PORT", 1, 65535,
                  kSlurmPortBase + v.integerOr("SLURM_JOB_ID", 0, 1 << 30, 0) % kSlurmPortSpan);
  return t;
}

Topology fromTorchrun(const Vars& v) {
  Topology t;
  t.source = "torchrun";
  t.world_size = v.integer("WORLD_SIZE", 1, kMax);
  t.rank = v.integer("RANK", 0, t.world_size - 1);
  t.local_size = v.integerOr("LOCAL_WORLD_SIZE", 1, t.world_size, 1);
  t.local_rank = v.integerOr("LOCAL_RANK", 0, t.local_size - 1, 0);
  if (t.world_size % t.local_size != 0) {
    throw Error("LOCAL_WORLD_SIZE: " +
                expectedGot("a divisor of WORLD_SIZE " + std::to_string(t.world_size),
                            std::to_string(t.local_size)));
  }
  t.node_count = t.world_size / t.local_size;
  t.node_rank = v.integerOr("GROUP_RANK", 0, t.node_count - 1, t.rank / t.local_size);
  t.master_addr = v.str("MASTER_ADDR", "127.0.0.1");
  t.master_port = v.integerOr("MASTER_PORT", 1, 65535, 29500);
  return t;
}

}  // namespace

Topology topologyFromPmix() {
  PmixClient& c = PmixClient::instance();
  Topology t;
  t.source = "pmix";
  t.rank = c.rank();
  t.world_size = c.size();
  t.local_rank = c.localRank();
  t.local_size = c.localSize();
  t.node_rank = c.nodeRank();
  t.node_count = c.nodeCount();
  return t;
}

Topology detectTopology(const EnvReader& env_in) {
  const EnvReader env = env_in ? env_in : EnvReader([](const char* n) { return std::getenv(n); });
  const Vars v(env);
  if (v.has("ZSHARD_RANK")) return fromZlaunch(v);
  if (v.has("PMIX_RANK") && v.has("PMIX_NAMESPACE")) return topologyFromPmix();
  if (v.has("SLURM_PROCID") && v.has("SLURM_STEP_ID")) return fromSlurm(v);
  if (v.has("RANK") && v.has("WORLD_SIZE")) return fromTorchrun(v);
  Topology t;
  t.source = "single";
  return t;
}

}  // namespace zshard::rendezvous
