#include "launcher/cli.h"

#include <cerrno>
#include <cstdlib>

#include "runtime/core/error.h"
#include "runtime/core/suggest.h"

namespace zshard::launcher {

namespace {

const std::vector<std::string> kLaunchOptions = {"--config", "--help", "--version"};
const std::vector<std::string> kCheckOptions = {"--world-size", "--help"};

[[noreturn]] void unknownOption(const std::string& arg, const std::vector<std::string>& known) {
  const std::string guess = closestMatch(arg, known);
  throw UsageError("unknown option " + arg +
                   (guess.empty() ? "" : "; did you mean " + guess + "?"));
}

// The value after an option (or after '=' in --opt=value).
std::string optionValue(const std::vector<std::string>& args, size_t& i, const std::string& name) {
  const std::string& arg = args[i];
  if (arg.size() > name.size() && arg[name.size()] == '=') return arg.substr(name.size() + 1);
  if (i + 1 >= args.size()) throw UsageError(name + " needs a value");
  return args[++i];
}

bool isOption(const std::string& arg, const std::string& name) {
  return arg == name || arg.rfind(name + "=", 0) == 0;
}

int positiveInt(const std::string& name, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < 1 || v > 1 << 24) {
    throw UsageError(name + ": " + expectedGot("a positive integer", "\"" + text + "\""));
  }
  return static_cast<int>(v);
}

CommandLine parseCheckConfig(const std::vector<std::string>& args) {
  CommandLine cl;
  cl.action = CommandLine::Action::kCheckConfig;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (isOption(arg, "--world-size")) {
      cl.world_size = positiveInt("--world-size", optionValue(args, i, "--world-size"));
    } else if (arg == "--help" || arg == "-h") {
      cl.action = CommandLine::Action::kHelp;
      return cl;
    } else if (arg.rfind("-", 0) == 0 && arg != "-") {
      unknownOption(arg, kCheckOptions);
    } else if (cl.config_path.empty()) {
      cl.config_path = arg;
    } else {
      throw UsageError("check-config takes one FILE, got a second: " + arg);
    }
  }
  if (cl.config_path.empty()) throw UsageError("check-config needs a FILE");
  return cl;
}

}  // namespace

CommandLine parseCommandLine(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "check-config") return parseCheckConfig(args);
  CommandLine cl;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--version" || arg == "-V") {
      cl.action = CommandLine::Action::kVersion;
      return cl;
    } else if (arg == "--help" || arg == "-h") {
      cl.action = CommandLine::Action::kHelp;
      return cl;
    } else if (isOption(arg, "--config") || isOption(arg, "--deepspeed_config")) {
      cl.config_path =
          optionValue(args, i, arg.rfind("--config", 0) == 0 ? "--config" : "--deepspeed_config");
    } else if (arg.rfind("-", 0) == 0) {
      unknownOption(arg, kLaunchOptions);
    } else {
      cl.action = CommandLine::Action::kLaunch;
      cl.script.assign(args.begin() + static_cast<long>(i), args.end());
      return cl;
    }
  }
  if (!cl.config_path.empty()) throw UsageError("--config given but no SCRIPT to run");
  return cl;
}

std::string usageText() {
  return "usage: zlaunch [--config ds.json] SCRIPT [ARGS...]\n"
         "       zlaunch check-config [--world-size N] FILE\n"
         "       zlaunch --version\n"
         "\n"
         "check-config  validate a DeepSpeed-style ds.json: exit 0 with a summary,\n"
         "              or exit 2 with one line per problem naming its key\n"
         "--world-size  the number of GPUs (ranks) to check batch sizes against\n"
         "--version     print the version and what this build has (CUDA, NCCL, PMIx, Gloo)\n";
}

}  // namespace zshard::launcher
