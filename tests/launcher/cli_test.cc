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

TEST(Cli, VersionAndHelp) {
  EXPECT_EQ(parseCommandLine({"--version"}).action, Action::kVersion);
  EXPECT_EQ(parseCommandLine({"-V"}).action, Action::kVersion);
  EXPECT_EQ(parseCommandLine({}).action, Action::kHelp);
  EXPECT_EQ(parseCommandLine({"--help"}).action, Action::kHelp);
}

TEST(Cli, ScriptAndItsArgumentsArePassedThrough) {
  const CommandLine cl = parseCommandLine({"--config", "ds.json", "train.py", "--lr", "3"});
  EXPECT_EQ(cl.action, Action::kLaunch);
  EXPECT_EQ(cl.config_path, "ds.json");
  EXPECT_EQ(cl.script, (std::vector<std::string>{"train.py", "--lr", "3"}));
}

TEST(Cli, BadUsageNamesTheProblem) {
  EXPECT_EQ(usageError({"check-config"}), "check-config needs a FILE");
  EXPECT_EQ(usageError({"check-config", "a.json", "b.json"}),
            "check-config takes one FILE, got a second: b.json");
  EXPECT_EQ(usageError({"check-config", "--world-szie", "4", "a.json"}),
            "unknown option --world-szie; did you mean --world-size?");
  EXPECT_EQ(usageError({"check-config", "--world-size", "0", "a.json"}),
            "--world-size: expected a positive integer, got \"0\"");
  EXPECT_EQ(usageError({"check-config", "--world-size", "4x", "a.json"}),
            "--world-size: expected a positive integer, got \"4x\"");
  EXPECT_EQ(usageError({"check-config", "a.json", "--world-size"}), "--world-size needs a value");
  EXPECT_EQ(usageError({"--confg", "ds.json", "train.py"}),
            "unknown option --confg; did you mean --config?");
  EXPECT_EQ(usageError({"--config", "ds.json"}), "--config given but no SCRIPT to run");
}

}  // namespace
}  // namespace zshard::launcher
