// zlaunch: the zshard launcher.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "launcher/check_config_command.h"
#include "launcher/cli.h"
#include "launcher/controller.h"
#include "launcher/hostfile.h"
#include "launcher/node_rendezvous.h"
#include "launcher/process_guard.h"
#include "launcher/report_command.h"
#include "launcher/slurm_launch.h"
#include "runtime/core/build_info.h"
#include "runtime/core/error.h"

namespace {

constexpr int kUsageExit = 2;

char** argv_ = nullptr;

// --log-dir must be a directory zlaunch can write (made when missing):
// otherwise every rank's output would be lost with exit code 0.
int checkLogDir(const std::string& dir) {
  if (dir.empty()) return 0;
  std::error_code e;
  std::filesystem::create_directories(dir, e);
  if (!std::filesystem::is_directory(dir, e) || access(dir.c_str(), W_OK | X_OK) != 0) {
    std::cerr << "zlaunch: --log-dir " << dir << ": expected a directory zlaunch can write, got "
              << (std::filesystem::exists(dir, e) ? (std::filesystem::is_directory(dir, e)
                                                         ? "one without write permission"
                                                         : "something that is not a directory")
                                                  : "a path that cannot be made")
              << "; nothing was started\n";
    return kUsageExit;
  }
  return 0;
}

// The timeout flags as the variables zlaunch's own store client and its
// workers read (runtime/core/timeouts.h).
void exportTimeouts(const zshard::launcher::LaunchOptions& o) {
  if (o.collective_timeout) {
    setenv("ZSHARD_COLLECTIVE_TIMEOUT", std::to_string(*o.collective_timeout).c_str(), 1);
  }
  if (o.store_timeout) setenv("ZSHARD_STORE_TIMEOUT", std::to_string(*o.store_timeout).c_str(), 1);
}

int run(const zshard::launcher::CommandLine& cl) {
  using Action = zshard::launcher::CommandLine::Action;
  switch (cl.action) {
    case Action::kVersion: std::cout << zshard::buildReport(); return 0;
    case Action::kReport: return zshard::launcher::runReport(cl.report_dir, std::cerr);
    case Action::kCheckConfig:
      return zshard::launcher::runCheckConfig(cl.config_path, cl.world_size, cl.allow_auto,
                                              std::cout, std::cerr);
    case Action::kLaunch: {
      zshard::launcher::LaunchOptions o = cl.launch;
      exportTimeouts(o);
      if (int code = checkLogDir(o.log_dir)) return code;
      if (!o.config_path.empty()) {
        if (int code = zshard::launcher::validateLaunchConfig(o.config_path, std::cerr))
          return code;
      }
      zshard::launcher::srunSelfIfAllocation(argv_);
      zshard::launcher::applyHostfile(o);
      zshard::launcher::NodePlan plan = zshard::launcher::rendezvousNodes(
          o, o.nproc_per_node.value_or(zshard::launcher::defaultLocalSize()));
      return zshard::launcher::runController(o, plan);
    }
    case Action::kHelp:
    default: std::cout << zshard::launcher::usageText(); return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == zshard::launcher::kProcessGuardFlag) {
    zshard::launcher::runProcessGuard();
    return 0;
  }
  const std::vector<std::string> args(argv + 1, argv + argc);
  argv_ = argv;
  try {
    return run(zshard::launcher::parseCommandLine(args));
  } catch (const zshard::UsageError& e) {
    std::cerr << "zlaunch: " << e.what() << "\n" << zshard::launcher::usageText();
    return kUsageExit;
  } catch (const zshard::Error& e) {
    std::cerr << "zlaunch: " << e.what() << "\n";
    return 1;
  }
}
