#pragma once

#include <optional>
#include <string>
#include <vector>

namespace zshard::launcher {

// What `zlaunch [options] SCRIPT [ARGS...]` asks for. Defaults written here once.
struct LaunchOptions {
  std::optional<int> nproc_per_node;  // default: visible GPUs, else 1 CPU worker
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: a free port (single node), else required
  int max_restarts = 0;
  std::string log_dir;        // also: the run log and report (ZSHARD_LOG_DIR)
  bool tee = false;           // with --log-dir: also to the console
  std::string trace_dir;      // every rank's Chrome trace (ZSHARD_TRACE_DIR)
  double grace_period = 5.0;  // seconds between SIGTERM and SIGKILL
  // Seconds, for zlaunch and its workers (ZSHARD_COLLECTIVE_TIMEOUT /
  // ZSHARD_STORE_TIMEOUT; unset: runtime/core/timeouts.h's defaults).
  std::optional<double> collective_timeout, store_timeout;
  // Seconds every node has to join the job before the rendezvous fails
  // naming the missing ones; a node whose controller stops beating this
  // long is dead and the job stops.
  double rendezvous_timeout = 120.0;
  double node_timeout = 6.0;
  std::string run_id;                    // names the run in the store; default "run"
  double monitor_interval = 1.0;         // seconds between GPU samples
  std::string hostfile;                  // DeepSpeed's "HOST slots=N" file
  std::string include, exclude;          // DeepSpeed's HOST[:SLOTS][@HOST...] filters
  std::string module;                    // -m MODULE instead of a script
  std::string config_path;               // --config / --deepspeed_config
  std::string deepspeed_alias = "auto";  // --deepspeed-alias auto|on|off
  std::string local_rank_arg = "auto";   // --local-rank-arg auto|on|off
  std::vector<std::string> script;       // SCRIPT [ARGS...] (ARGS only with -m)
};

// What the zlaunch command line asks for.
struct CommandLine {
  enum class Action { kHelp, kVersion, kCheckConfig, kReport, kLaunch };
  Action action = Action::kHelp;
  std::string config_path;        // check-config FILE
  std::string report_dir;         // report LOG_DIR
  std::optional<int> world_size;  // check-config --world-size N
  bool allow_auto = false;        // check-config --allow-auto
  LaunchOptions launch;           // kLaunch
};

// Parses argv (without argv[0]). Throws UsageError naming the bad option or
// value (zlaunch prints it with the usage line and exits 2).
CommandLine parseCommandLine(const std::vector<std::string>& args);

// The --help text.
std::string usageText();

}  // namespace zshard::launcher
