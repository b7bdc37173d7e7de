#include "launcher/cli.h"

#include <gtest/gtest.h>

#include "runtime/core/error.h"

namespace zshard::launcher {
namespace {

using Action = CommandLine::Action;

std::string usageError(const std::vector<std::string>& args) {
  try {
    parseCommandLine(args);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(Cli, CheckConfigWithWorldSize) {
  for (const auto& args : {std::vector<std::string>{"check-config", "--world-size", "8", "ds.json"},
                           std::vector<std::string>{"check-config", "ds.json", "--world-size=8"}}) {
    const CommandLine cl = parseCommandLine(args);
    EXPECT_EQ(cl.action, Action::kCheckConfig);
    EXPECT_EQ(cl.config_path, "ds.json");
    EXPECT_EQ(cl.world_size, 8);
  }
  EXPECT_FALSE(parseCommandLine({"check-config", "ds.json"}).world_size.has_value());
}

TEST(Cli, ReportAndTrace) {
  const CommandLine report = parseCommandLine({"report", "logs"});
  EXPECT_EQ(report.action, Action::kReport);
  EXPECT_EQ(report.report_dir, "logs");
  EXPECT_EQ(usageError({"report"}),
            "report takes one LOG_DIR (a zlaunch --log-dir), got 0 argument(s)");
  EXPECT_EQ(usageError({"report", "a", "b"}),
            "report takes one LOG_DIR (a zlaunch --log-dir), got 2 argument(s)");
  EXPECT_EQ(parseCommandLine({"--trace", "t", "x.py"}).launch.trace_dir, "t");
  EXPECT_EQ(parseCommandLine({"--trace=t2", "x.py"}).launch.trace_dir, "t2");
}

TEST(Cli, VersionAndHelp) {
  EXPECT_EQ(parseCommandLine({"--version"}).action, Action::kVersion);
  EXPECT_EQ(parseCommandLine({"-V"}).action, Action::kVersion);
  EXPECT_EQ(parseCommandLine({}).action, Action::kHelp);
  EXPECT_EQ(parseCommandLine({"--help"}).action, Action::kHelp);
}

TEST(Cli, ScriptAndItsArgumentsArePassedThrough) {
  const CommandLine cl = parseCommandLine({"--nproc-per-node", "4", "--config", "ds.json",
                                           "--max-restarts=2", "train.py", "--lr", "3"});
  EXPECT_EQ(cl.action, Action::kLaunch);
  EXPECT_EQ(cl.launch.config_path, "ds.json");
  EXPECT_EQ(cl.launch.nproc_per_node, 4);
  EXPECT_EQ(cl.launch.max_restarts, 2);
  EXPECT_EQ(cl.launch.script, (std::vector<std::string>{"train.py", "--lr", "3"}));
  const CommandLine m = parseCommandLine({"--tee", "-m", "pkg.train", "--x"});
  EXPECT_EQ(m.launch.module, "pkg.train");
  EXPECT_TRUE(m.launch.tee);
  EXPECT_EQ(m.launch.script, (std::vector<std::string>{"--x"}));
}

TEST(Cli, LocalRankArgumentModes) {
  EXPECT_EQ(parseCommandLine({"x.py"}).launch.local_rank_arg, "auto");
  EXPECT_EQ(parseCommandLine({"--local-rank-arg", "on", "x.py"}).launch.local_rank_arg, "on");
  EXPECT_EQ(parseCommandLine({"--no_local_rank", "x.py"}).launch.local_rank_arg, "off");
  EXPECT_EQ(parseCommandLine({"--no-local-rank", "x.py"}).launch.local_rank_arg, "off");
  EXPECT_EQ(usageError({"--local-rank-arg", "yes", "x.py"}),
            "--local-rank-arg: expected auto, on or off, got \"yes\"");
}

TEST(Cli, BadUsageNamesTheProblem) {
  EXPECT_EQ(usageError({"check-config"}), "check-config needs a FILE");
  EXPECT_EQ(usageError({"check-config", "a.json", "b.json"}),
            "check-config takes one FILE, got a second: b.json");
  EXPECT_EQ(usageError({"check-config", "--world-szie", "4", "a.json"}),
            "unknown option --world-szie; did you mean --world-size?");
  EXPECT_EQ(usageError({"check-config", "--world-size", "0", "a.json"}),
            "--world-size: expected an integer in 1..16777216, got \"0\"");
  EXPECT_EQ(usageError({"check-config", "--world-size", "4x", "a.json"}),
            "--world-size: expected an integer in 1..16777216, got \"4x\"");
  EXPECT_EQ(usageError({"check-config", "a.json", "--world-size"}), "--world-size needs a value");
  EXPECT_EQ(usageError({"--confg", "ds.json", "train.py"}),
            "unknown option --confg; did you mean --config?");
  EXPECT_EQ(usageError({"--config", "ds.json"}), "--config given but no SCRIPT to run");
  EXPECT_EQ(usageError({"--nproc-per-node", "0", "x.py"}),
            "--nproc-per-node: expected an integer in 1..4096, got \"0\"");
  EXPECT_EQ(usageError({"--nnodes", "2", "--node-rank", "2", "--master-port", "5", "x.py"}),
            "--node-rank: expected 0..1, got 2");
  EXPECT_EQ(usageError({"--nnodes", "2", "x.py"}),
            "--master-port: required with --nnodes > 1 (every node must reach node 0's store)");
  EXPECT_EQ(usageError({"--grace-period", "-1", "x.py"}),
            "--grace-period: expected seconds (0..86400), got \"-1\"");
  EXPECT_EQ(usageError({"--nproc_per_node=2", "x.py"}),
            "unknown option --nproc_per_node; did you mean --nproc-per-node?");
}

}  // namespace
}  // namespace zshard::launcher
