#pragma once

#include <optional>
#include <string>
#include <vector>

namespace zshard::launcher {

// What the zlaunch command line asks for.
struct CommandLine {
  enum class Action { kHelp, kVersion, kCheckConfig, kLaunch };
  Action action = Action::kHelp;
  std::string config_path;          // check-config FILE, or --config FILE
  std::optional<int> world_size;    // check-config --world-size N
  std::vector<std::string> script;  // SCRIPT [ARGS...] for kLaunch
};

// Parses argv (without argv[0]). Throws UsageError naming the bad option or
// value (zlaunch prints it with the usage line and exits 2).
CommandLine parseCommandLine(const std::vector<std::string>& args);

// The --help text.
std::string usageText();

}  // namespace zshard::launcher
