// zlaunch: the zshard launcher.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "launcher/check_config_command.h"
#include "launcher/cli.h"
#include "launcher/controller.h"
#include "launcher/hostfile.h"
#include "launcher/node_rendezvous.h"
#include "launcher/process_guard.h"
#include "launcher/slurm_launch.h"
#include "runtime/core/build_info.h"
#include "runtime/core/error.h"

namespace {

constexpr int kUsageExit = 2;

char** argv_ = nullptr;

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
    case Action::kCheckConfig:
      return zshard::launcher::runCheckConfig(cl.config_path, cl.world_size, cl.allow_auto,
                                              std::cout, std::cerr);
    case Action::kLaunch: {
      zshard::launcher::LaunchOptions o = cl.launch;
      exportTimeouts(o);
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
