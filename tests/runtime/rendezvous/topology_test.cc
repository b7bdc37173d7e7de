#include "runtime/rendezvous/topology.h"

#include <gtest/gtest.h>

#include <map>

#include "runtime/core/error.h"
#include "runtime/rendezvous/hostlist.h"

namespace zshard::rendezvous {
namespace {

using Env = std::map<std::string, std::string>;

Topology detect(const Env& env) {
  return detectTopology([&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string errorOf(const Env& env) {
  try {
    detect(env);
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(Hostlist, ExpandsSlurmSyntax) {
  EXPECT_EQ(expandHostlist("dgx5"), (std::vector<std::string>{"dgx5"}));
  EXPECT_EQ(expandHostlist("gpu[01-03,07],login5"),
            (std::vector<std::string>{"gpu01", "gpu02", "gpu03", "gpu07", "login5"}));
  EXPECT_EQ(expandHostlist("r[1-2]-n[8-10]"),
            (std::vector<std::string>{"r1-n8", "r1-n9", "r1-n10", "r2-n8", "r2-n9", "r2-n10"}));
  EXPECT_EQ(expandHostlist("n[098-101]-ib"),
            (std::vector<std::string>{"n098-ib", "n099-ib", "n100-ib", "n101-ib"}));
  for (const char* bad : {"gpu[01-03", "gpu01]", "gpu[3-1]", "gpu[a-b]", "a,,b", "gpu[]"}) {
    EXPECT_THROW(expandHostlist(bad), Error) << bad;
  }
}

TEST(Hostlist, ExpandsTasksPerNode) {
  EXPECT_EQ(expandTasksPerNode("4"), (std::vector<int>{4}));
  EXPECT_EQ(expandTasksPerNode("2(x3),1"), (std::vector<int>{2, 2, 2, 1}));
  EXPECT_THROW(expandTasksPerNode("2(x3"), Error);
}

TEST(Topology, ZlaunchVariablesComeFirst) {
  const Topology t = detect({{"ZSHARD_RANK", "5"},
                             {"ZSHARD_WORLD_SIZE", "8"},
                             {"ZSHARD_LOCAL_RANK", "1"},
                             {"ZSHARD_LOCAL_SIZE", "4"},
                             {"ZSHARD_NODE_RANK", "1"},
                             {"ZSHARD_NODE_COUNT", "2"},
                             {"ZSHARD_STORE_ADDR", "node1:4242"},
                             {"RANK", "0"},
                             {"WORLD_SIZE", "1"},
                             {"SLURM_PROCID", "3"},
                             {"SLURM_STEP_ID", "0"}});
  EXPECT_EQ(t.source, "zlaunch");
  EXPECT_EQ(t.rank, 5);
  EXPECT_EQ(t.local_rank, 1);
  EXPECT_EQ(t.node_rank, 1);
  EXPECT_EQ(t.master_addr, "node1");
  EXPECT_EQ(t.master_port, 4242);
}

TEST(Topology, SlurmStepWithoutPmix) {
  const Topology t = detect({{"SLURM_PROCID", "6"},
                             {"SLURM_STEP_ID", "0"},
                             {"SLURM_NTASKS", "8"},
                             {"SLURM_NNODES", "2"},
                             {"SLURM_NODEID", "1"},
                             {"SLURM_LOCALID", "2"},
                             {"SLURM_STEP_TASKS_PER_NODE", "4(x2)"},
                             {"SLURM_STEP_NODELIST", "gpu[07-08]"},
                             {"SLURM_JOB_ID", "123456"}});
  EXPECT_EQ(t.source, "slurm");
  EXPECT_EQ(t.rank, 6);
  EXPECT_EQ(t.world_size, 8);
  EXPECT_EQ(t.local_rank, 2);
  EXPECT_EQ(t.local_size, 4);
  EXPECT_EQ(t.node_rank, 1);
  EXPECT_EQ(t.node_count, 2);
  EXPECT_EQ(t.master_addr, "gpu07");
  EXPECT_EQ(t.master_port, 29500 + 123456 % 20000);
}

TEST(Topology, TorchrunVariables) {
  const Topology t = detect({{"RANK", "3"},
                             {"WORLD_SIZE", "4"},
                             {"LOCAL_RANK", "1"},
                             {"LOCAL_WORLD_SIZE", "2"},
                             {"MASTER_ADDR", "10.0.0.1"},
                             {"MASTER_PORT", "29501"}});
  EXPECT_EQ(t.source, "torchrun");
  EXPECT_EQ(t.node_count, 2);
  EXPECT_EQ(t.node_rank, 1);
  EXPECT_EQ(t.master_addr, "10.0.0.1");
  EXPECT_EQ(t.master_port, 29501);
}

TEST(Topology, SingleProcessWhenNothingIsSet) {
  const Topology t = detect({});
  EXPECT_EQ(t.source, "single");
  EXPECT_EQ(t.world_size, 1);
}

TEST(Topology, MalformedVariablesAreNamed) {
  EXPECT_EQ(errorOf({{"RANK", "4"}, {"WORLD_SIZE", "4"}}),
            "RANK: expected an integer in 0..3, got \"4\"");
  EXPECT_EQ(errorOf({{"RANK", "x"}, {"WORLD_SIZE", "4"}}),
            "RANK: expected an integer in 0..3, got \"x\"");
  EXPECT_EQ(errorOf({{"RANK", "0"}, {"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "3"}}),
            "LOCAL_WORLD_SIZE: expected a divisor of WORLD_SIZE 4, got 3");
  EXPECT_NE(errorOf({{"ZSHARD_RANK", "0"},
                     {"ZSHARD_WORLD_SIZE", "2"},
                     {"ZSHARD_LOCAL_RANK", "0"},
                     {"ZSHARD_LOCAL_SIZE", "2"},
                     {"ZSHARD_NODE_RANK", "0"},
                     {"ZSHARD_NODE_COUNT", "1"},
                     {"ZSHARD_STORE_ADDR", "nohostport"}})
                .find("ZSHARD_STORE_ADDR: expected host:port"),
            std::string::npos);
  EXPECT_NE(errorOf({{"SLURM_PROCID", "0"},
                     {"SLURM_STEP_ID", "0"},
                     {"SLURM_NTASKS", "2"},
                     {"SLURM_NNODES", "1"},
                     {"SLURM_NODEID", "0"},
                     {"SLURM_LOCALID", "0"},
                     {"SLURM_STEP_NODELIST", "gpu[1-"}})
                .find("hostlist"),
            std::string::npos);
}

}  // namespace
}  // namespace zshard::rendezvous
