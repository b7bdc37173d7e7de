#include "launcher/cli.h"

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <map>

#include "runtime/core/error.h"
#include "runtime/core/suggest.h"

namespace zshard::launcher {

namespace {

[[noreturn]] void unknownOption(const std::string& arg, const std::vector<std::string>& known) {
  const std::string name = arg.substr(0, arg.find('='));
  const std::string guess = closestMatch(name, known);
  throw UsageError("unknown option " + name +
                   (guess.empty() ? "" : "; did you mean " + guess + "?"));
}

int intValue(const std::string& name, const std::string& text, long lo, long hi) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
    throw UsageError(name + ": " +
                     expectedGot("an integer in " + std::to_string(lo) + ".." + std::to_string(hi),
                                 "\"" + text + "\""));
  }
  return static_cast<int>(v);
}

double secondsValue(const std::string& name, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= 0) || v > 86400) {
    throw UsageError(name + ": " + expectedGot("seconds (0..86400)", "\"" + text + "\""));
  }
  return v;
}

double positiveSeconds(const std::string& name, const std::string& text) {
  const double v = secondsValue(name, text);
  if (v <= 0)
    throw UsageError(name + ": " + expectedGot("more than 0 seconds", "\"" + text + "\""));
  return v;
}

// Options that take a value, and what to do with it.
using Setter = std::function<void(LaunchOptions&, const std::string&)>;

const std::map<std::string, Setter>& launchOptions() {
  static const std::map<std::string, Setter> options = {
      {"--config", [](LaunchOptions& o, const std::string& v) { o.config_path = v; }},
      {"--deepspeed_config", [](LaunchOptions& o, const std::string& v) { o.config_path = v; }},
      {"--nproc-per-node",
       [](LaunchOptions& o, const std::string& v) {
         o.nproc_per_node = intValue("--nproc-per-node", v, 1, 4096);
       }},
      {"--nnodes", [](LaunchOptions& o,
                      const std::string& v) { o.nnodes = intValue("--nnodes", v, 1, 65536); }},
      {"--node-rank",
       [](LaunchOptions& o, const std::string& v) {
         o.node_rank = intValue("--node-rank", v, 0, 65535);
       }},
      {"--master-addr", [](LaunchOptions& o, const std::string& v) { o.master_addr = v; }},
      {"--master-port",
       [](LaunchOptions& o, const std::string& v) {
         o.master_port = intValue("--master-port", v, 1, 65535);
       }},
      {"--max-restarts",
       [](LaunchOptions& o, const std::string& v) {
         o.max_restarts = intValue("--max-restarts", v, 0, 1000);
       }},
      {"--log-dir", [](LaunchOptions& o, const std::string& v) { o.log_dir = v; }},
      {"--trace", [](LaunchOptions& o, const std::string& v) { o.trace_dir = v; }},
      {"--grace-period",
       [](LaunchOptions& o, const std::string& v) {
         o.grace_period = secondsValue("--grace-period", v);
       }},
      {"--collective-timeout",
       [](LaunchOptions& o, const std::string& v) {
         o.collective_timeout = positiveSeconds("--collective-timeout", v);
       }},
      {"--store-timeout",
       [](LaunchOptions& o, const std::string& v) {
         o.store_timeout = positiveSeconds("--store-timeout", v);
       }},
      {"--rendezvous-timeout",
       [](LaunchOptions& o, const std::string& v) {
         o.rendezvous_timeout = positiveSeconds("--rendezvous-timeout", v);
       }},
      {"--node-timeout",
       [](LaunchOptions& o, const std::string& v) {
         o.node_timeout = positiveSeconds("--node-timeout", v);
       }},
      {"--run-id", [](LaunchOptions& o, const std::string& v) { o.run_id = v; }},
      {"--deepspeed-alias",
       [](LaunchOptions& o, const std::string& v) {
         if (v != "auto" && v != "on" && v != "off") {
           throw UsageError("--deepspeed-alias: " +
                            expectedGot("auto, on or off", "\"" + v + "\""));
         }
         o.deepspeed_alias = v;
       }},
      {"--local-rank-arg",
       [](LaunchOptions& o, const std::string& v) {
         if (v != "auto" && v != "on" && v != "off") {
           throw UsageError("--local-rank-arg: " + expectedGot("auto, on or off", "\"" + v + "\""));
         }
         o.local_rank_arg = v;
       }},
      {"--hostfile", [](LaunchOptions& o, const std::string& v) { o.hostfile = v; }},
      {"--include", [](LaunchOptions& o, const std::string& v) { o.include = v; }},
      {"--exclude", [](LaunchOptions& o, const std::string& v) { o.exclude = v; }},
      {"--monitor-interval",
       [](LaunchOptions& o, const std::string& v) {
         o.monitor_interval = secondsValue("--monitor-interval", v);
       }},
  };
  return options;
}

std::vector<std::string> knownLaunchOptions() {
  std::vector<std::string> names = {"--help", "--version",       "--tee",
                                    "-m",     "--no-local-rank", "--no_local_rank"};
  for (const auto& [name, setter] : launchOptions()) names.push_back(name);
  return names;
}

// The value after an option (or after '=' in --opt=value).
std::string optionValue(const std::vector<std::string>& args, size_t& i, const std::string& name) {
  const std::string& arg = args[i];
  if (arg.size() > name.size() && arg[name.size()] == '=') return arg.substr(name.size() + 1);
  if (i + 1 >= args.size()) throw UsageError(name + " needs a value");
  return args[++i];
}

CommandLine parseCheckConfig(const std::vector<std::string>& args) {
  CommandLine cl;
  cl.action = CommandLine::Action::kCheckConfig;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--world-size" || arg.rfind("--world-size=", 0) == 0) {
      cl.world_size = intValue("--world-size", optionValue(args, i, "--world-size"), 1, 1 << 24);
    } else if (arg == "--allow-auto") {
      cl.allow_auto = true;
    } else if (arg == "--help" || arg == "-h") {
      cl.action = CommandLine::Action::kHelp;
      return cl;
    } else if (arg.rfind("-", 0) == 0 && arg != "-") {
      unknownOption(arg, {"--world-size", "--allow-auto", "--help"});
    } else if (cl.config_path.empty()) {
      cl.config_path = arg;
    } else {
      throw UsageError("check-config takes one FILE, got a second: " + arg);
    }
  }
  if (cl.config_path.empty()) throw UsageError("check-config needs a FILE");
  return cl;
}

void checkLaunch(const LaunchOptions& o) {
  if (o.node_rank >= o.nnodes) {
    throw UsageError("--node-rank: " + expectedGot("0.." + std::to_string(o.nnodes - 1),
                                                   std::to_string(o.node_rank)));
  }
  if ((!o.include.empty() || !o.exclude.empty()) && o.hostfile.empty()) {
    throw UsageError("--include/--exclude: need a --hostfile to select from");
  }
  if (!o.hostfile.empty() && (o.nnodes != 1 || o.node_rank != 0)) {
    throw UsageError(
        "--hostfile: gives the nodes and this node's rank itself; drop --nnodes/--node-rank");
  }
  if (o.nnodes > 1 && o.master_port == 0) {
    throw UsageError(
        "--master-port: required with --nnodes > 1 (every node must reach node 0's store)");
  }
}

}  // namespace

CommandLine parseReport(const std::vector<std::string>& args) {
  CommandLine cl;
  cl.action = CommandLine::Action::kReport;
  if (args.size() == 2 && (args[1] == "--help" || args[1] == "-h")) {
    cl.action = CommandLine::Action::kHelp;
  } else if (args.size() != 2 || args[1].rfind("-", 0) == 0) {
    throw UsageError("report takes one LOG_DIR (a zlaunch --log-dir), got " +
                     std::to_string(args.size() - 1) + " argument(s)");
  } else {
    cl.report_dir = args[1];
  }
  return cl;
}

CommandLine parseCommandLine(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "check-config") return parseCheckConfig(args);
  if (!args.empty() && args[0] == "report") return parseReport(args);
  CommandLine cl;
  LaunchOptions& o = cl.launch;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const std::string name = arg.substr(0, arg.find('='));
    if (arg == "--version" || arg == "-V") {
      cl.action = CommandLine::Action::kVersion;
      return cl;
    } else if (arg == "--help" || arg == "-h") {
      cl.action = CommandLine::Action::kHelp;
      return cl;
    } else if (arg == "--tee") {
      o.tee = true;
    } else if (arg == "--no-local-rank" || arg == "--no_local_rank") {  // DeepSpeed's spelling
      o.local_rank_arg = "off";
    } else if (arg == "-m") {
      o.module = optionValue(args, i, "-m");
      o.script.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      cl.action = CommandLine::Action::kLaunch;
      break;
    } else if (auto it = launchOptions().find(name); it != launchOptions().end()) {
      it->second(o, optionValue(args, i, name));
    } else if (arg.rfind("-", 0) == 0) {
      unknownOption(arg, knownLaunchOptions());
    } else {
      o.script.assign(args.begin() + static_cast<long>(i), args.end());
      cl.action = CommandLine::Action::kLaunch;
      break;
    }
  }
  if (cl.action != CommandLine::Action::kLaunch) {
    if (!o.config_path.empty()) throw UsageError("--config given but no SCRIPT to run");
    return cl;
  }
  checkLaunch(o);
  return cl;
}

std::string usageText() {
  return "usage: zlaunch [options] [--config ds.json] SCRIPT [ARGS...]\n"
         "       zlaunch [options] -m MODULE [ARGS...]\n"
         "       zlaunch check-config [--world-size N] [--allow-auto] FILE\n"
         "       zlaunch report LOG_DIR   (re)make LOG_DIR/report.html\n"
         "       zlaunch --version\n"
         "\n"
         "Starts one worker per GPU of this node (--nproc-per-node; without GPUs, 1 CPU\n"
         "worker). Under srun --mpi=pmix (or mpirun) each task is one node's controller\n"
         "and they find each other through PMIx; under srun without PMIx, through\n"
         "SLURM_* variables; otherwise use --nnodes/--node-rank/--master-addr/--master-port.\n"
         "A Python SCRIPT runs with ZSHARD_PYTHON (default /usr/bin/python3).\n"
         "\n"
         "options:\n"
         "  --nproc-per-node N   workers on this node\n"
         "  --nnodes N           nodes (without PMIx/Slurm)       --node-rank R   this node\n"
         "  --master-addr HOST   node 0's address                 --master-port P its store port\n"
         "  --max-restarts N     restart the whole job up to N times after a failure\n"
         "  --log-dir DIR        also write each rank's output to DIR/rank<N>.log\n"
         "                       and the run log: node 0 writes DIR/report.html at the end\n"
         "  --tee                with --log-dir, keep printing to the console too\n"
         "  --trace DIR          every rank's timeline (Chrome trace) into DIR/trace.json\n"
         "  --grace-period S     seconds between SIGTERM and SIGKILL when stopping (5)\n"
         "  --collective-timeout S  a collective waiting longer is a hang, reported naming\n"
         "                       the ranks behind (300; the config's zshard.timeouts wins)\n"
         "  --store-timeout S    the job store must answer within S (30): past it, the\n"
         "                       store's server counts as stalled\n"
         "  --rendezvous-timeout S  every node must join within S (120), else the job stops\n"
         "                       naming the missing nodes\n"
         "  --node-timeout S     a node whose zlaunch stops beating for S (6) is dead: every\n"
         "                       other node stops, naming it\n"
         "  --run-id ID          names the run in the store and logs\n"
         "  --hostfile FILE      DeepSpeed hostfile (HOST slots=N); run zlaunch on each listed "
         "host\n"
         "  --include/--exclude  DeepSpeed's HOST[:SLOT,...][@HOST...] selection from the "
         "hostfile\n"
         "  --monitor-interval S seconds between GPU-use samples (1)\n"
         "  --deepspeed-alias M  auto|on|off: workers' `import deepspeed` gets zshard's alias\n"
         "                       (auto: when no real DeepSpeed is installed)\n"
         "  --local-rank-arg M   auto|on|off: pass --local_rank=N after SCRIPT, as DeepSpeed's\n"
         "                       launcher does (auto: when SCRIPT names --local_rank or\n"
         "                       imports deepspeed)\n"
         "  --no-local-rank      the same as --local-rank-arg off (DeepSpeed's --no_local_rank)\n"
         "  --config FILE        ds.json, passed to workers as ZSHARD_CONFIG\n"
         "check-config:\n"
         "  --world-size N       the number of GPUs (ranks) to check batch sizes against\n"
         "  --allow-auto         a HuggingFace template: \"auto\" values are filled in later\n"
         "                       (without it an unresolved \"auto\" is an error, as at "
         "initialize)\n";
}

}  // namespace zshard::launcher
