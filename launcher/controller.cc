#include "launcher/controller.h"
#include "launcher/deepspeed_alias.h"
#include "launcher/local_rank_arg.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "kernels/backend.h"
#include "launcher/gpu_monitor.h"
#include "launcher/node_liveness.h"
#include "launcher/output_pump.h"
#include "launcher/process.h"
#include "launcher/process_guard.h"
#include "launcher/report_command.h"
#include "runtime/core/error.h"
#include "runtime/rendezvous/hmac.h"

namespace zshard::launcher {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kTick = std::chrono::milliseconds(20);
constexpr auto kPeerWait = std::chrono::minutes(10);
// How long after the first failure the controller waits for the runtime's
// hang report (its CollectiveRunner gives peers 1 s to report; the rest is
// margin for a loaded machine) before it stops every worker and names the cause.
constexpr auto kSettle = std::chrono::milliseconds(2500);
// A worker that saved a checkpoint on a preemption signal exits with this
// (EX_TEMPFAIL; python/zshard/preemption.py), and so does zlaunch then.
constexpr int kPreemptedExit = 75;

std::atomic<int> g_signal{0};  // last SIGINT/SIGTERM/SIGUSR1/SIGUSR2 received
void onSignal(int sig) {
  g_signal = sig;
}

void installSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGUSR1, SIGUSR2}) sigaction(sig, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

extern "C" char** environ;

std::map<std::string, std::string> inheritedEnv() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    // A worker is not a PMIx client of the controller's step, nor a Slurm
    // task of its own: hide those so its topology comes from ZSHARD_*.
    const std::string key = kv.substr(0, eq);
    if (key.rfind("PMIX_", 0) == 0 || key.rfind("OMPI_", 0) == 0) continue;
    env[key] = kv.substr(eq + 1);
  }
  return env;
}

// A worker's command line; `local_rank` >= 0 adds DeepSpeed's --local_rank.
std::vector<std::string> workerArgv(const LaunchOptions& o, int local_rank) {
  std::vector<std::string> argv;
  size_t script_index = 0;
  if (!o.module.empty()) {
    argv = {pythonExecutable(), "-u", "-m", o.module};
    script_index = 3;
    argv.insert(argv.end(), o.script.begin(), o.script.end());
  } else {
    argv = o.script;
    const std::string& s = argv.front();
    if (s.size() > 3 && s.compare(s.size() - 3, 3, ".py") == 0) {
      argv.insert(argv.begin(), {pythonExecutable(), "-u"});
      script_index = 2;
    } else if (s.find('/') == std::string::npos && access(s.c_str(), X_OK) == 0) {
      argv.front() = "./" + s;
    }
  }
  if (local_rank >= 0) insertLocalRankArg(argv, script_index, local_rank);
  return argv;
}

struct Worker {
  int rank = 0;
  int local_rank = 0;
  std::unique_ptr<Process> process;  // destroyed after the pump (which reads its pipes)
  std::unique_ptr<OutputPump> pump;
  bool done = false;
  bool told_to_stop = false;  // got its one SIGTERM (or SIGINT) already
  int status = 0;
};

class Controller {
 public:
  Controller(const LaunchOptions& o, NodePlan& plan, ProcessGuard& guard)
      : o_(o),
        plan_(plan),
        guard_(guard),
        run_id_(o.run_id.empty() ? "run" : o.run_id),
        liveness_(*plan.store, run_id_, plan.node_rank, plan.node_count,
                  std::chrono::milliseconds(static_cast<int64_t>(o.node_timeout * 1000))) {
    omp_threads_ = std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN) / plan.local_size);
    alias_path_ = deepspeedAliasPath(o.deepspeed_alias, pythonExecutable());
    local_rank_arg_ = passesLocalRankArg(o.local_rank_arg, o.script, o.module);
  }

  int run() {
    for (int generation = 0;; ++generation) {
      const Outcome outcome = runGeneration(generation);
      if (outcome == Outcome::kSuccess) return finish(true);
      if (outcome == Outcome::kInterrupted) return finish(false, 128 + interrupted_by_);
      if (outcome == Outcome::kPreempted) {
        if (plan_.node_rank == 0) {
          std::cerr << "zlaunch: the job was preempted: its ranks saved a checkpoint and exited "
                    << kPreemptedExit << "; run it again (scontrol requeue) to resume\n";
        }
        return finish(false, kPreemptedExit);
      }
      if (generation >= o_.max_restarts || store_lost_) return finish(false);
      // Backing off (1, 2, 4 ... 30 s) gives a flaky node or file system
      // time to recover instead of spending every restart at once.
      const int wait_s = std::min(30, 1 << std::min(generation, 5));
      std::cerr << "zlaunch: restarting the job in " << wait_s << " s (restart " << generation + 1
                << " of " << o_.max_restarts << ")\n";
      if (!sleepUnlessStopped(std::chrono::seconds(wait_s)))
        return finish(false, 128 + interrupted_by_);
    }
  }

 private:
  enum class Outcome { kSuccess, kFailed, kInterrupted, kPreempted };

  std::string key(int generation, const std::string& name) const {
    return run_id_ + "/gen" + std::to_string(generation) + "/" + name;
  }

  std::map<std::string, std::string> workerEnv(int generation, int local_rank) const {
    std::map<std::string, std::string> env = inheritedEnv();
    const int rank = plan_.rank_offset + local_rank;
    const std::string addr = plan_.store_host + ":" + std::to_string(plan_.store_port);
    const std::map<std::string, std::string> vars = {
        {"ZSHARD_RANK", std::to_string(rank)},
        {"ZSHARD_WORLD_SIZE", std::to_string(plan_.world_size)},
        {"ZSHARD_LOCAL_RANK", std::to_string(local_rank)},
        {"ZSHARD_LOCAL_SIZE", std::to_string(plan_.local_size)},
        {"ZSHARD_NODE_RANK", std::to_string(plan_.node_rank)},
        {"ZSHARD_NODE_COUNT", std::to_string(plan_.node_count)},
        {"ZSHARD_STORE_ADDR", addr},
        {"ZSHARD_JOB_TOKEN", plan_.token},
        {"ZSHARD_STORE_PREFIX", key(generation, "job")},
        {"ZSHARD_RUN_ID", run_id_},
        {"ZSHARD_RESTART_COUNT", std::to_string(generation)},
        {"ZSHARD_CONFIG", o_.config_path},
        {"RANK", std::to_string(rank)},
        {"LOCAL_RANK", std::to_string(local_rank)},
        {"WORLD_SIZE", std::to_string(plan_.world_size)},
        {"LOCAL_WORLD_SIZE", std::to_string(plan_.local_size)},
        {"GROUP_RANK", std::to_string(plan_.node_rank)},
        {"CROSS_RANK", std::to_string(plan_.node_rank)},
        {"CROSS_SIZE", std::to_string(plan_.node_count)},
        {"MASTER_ADDR", plan_.store_host},
        {"MASTER_PORT", std::to_string(plan_.torch_port)},
        {"PYTHONUNBUFFERED", "1"},
    };
    for (const auto& [k, v] : vars) env[k] = v;
    // Where rank 0's run log (report) and every rank's trace go.
    if (!o_.log_dir.empty()) env["ZSHARD_LOG_DIR"] = std::filesystem::absolute(o_.log_dir);
    if (!o_.trace_dir.empty()) env["ZSHARD_TRACE_DIR"] = std::filesystem::absolute(o_.trace_dir);
    if (env.count("OMP_NUM_THREADS") == 0) env["OMP_NUM_THREADS"] = std::to_string(omp_threads_);
    if (!alias_path_.empty()) {
      const auto old = env.find("PYTHONPATH");
      env["PYTHONPATH"] =
          alias_path_ + (old != env.end() && !old->second.empty() ? ":" + old->second : "");
    }
    return env;
  }

  void start(int generation) {
    workers_.clear();
    for (int l = 0; l < plan_.local_size; ++l) {
      Worker w;
      w.local_rank = l;
      w.rank = plan_.rank_offset + l;
      w.process = std::make_unique<Process>(workerArgv(o_, local_rank_arg_ ? l : -1),
                                            workerEnv(generation, l));
      guard_.watchGroup(w.process->pid());
      const bool console = o_.log_dir.empty() || o_.tee;
      w.pump = std::make_unique<OutputPump>(w.rank, w.process->stdoutFd(), w.process->stderrFd(),
                                            o_.log_dir, console);
      workers_.push_back(std::move(w));
    }
  }

  static bool exitedWith(const Worker& w, int code) {
    return WIFEXITED(w.status) && WEXITSTATUS(w.status) == code;
  }

  // Sleeps `d`, or less when SIGINT/SIGTERM comes (false then).
  bool sleepUnlessStopped(std::chrono::seconds d) {
    const auto until = Clock::now() + d;
    while (Clock::now() < until) {
      const int sig = g_signal.load();
      if (sig == SIGINT || sig == SIGTERM) {
        interrupted_by_ = g_signal.exchange(0);
        return false;
      }
      std::this_thread::sleep_for(kTick);
    }
    return true;
  }

  // The ONE root-cause report. A runtime hang report (a collective timed
  // out, naming the ranks that never reached it) is the cause when there is
  // one; the first worker to end badly is then its symptom.
  std::string rootCause(const Worker& w, int generation) const {
    w.pump->finish();  // the whole stderr is in the tail now
    std::string line = "rank " + std::to_string(w.rank) + " (node " +
                       std::to_string(plan_.node_rank) + ", local rank " +
                       std::to_string(w.local_rank) + ") ended with " + describeStatus(w.status);
    const std::string tail = w.pump->stderrTail();
    if (!tail.empty()) line += "; last stderr lines:\n  " + indent(tail);
    // A rank that left early with exit code 0 is the likelier cause: its
    // peers' collectives wait for it until they time out.
    const std::string early = key(generation, "exit0");
    if (plan_.store->check({early})) line = plan_.store->get(early) + "; then " + line;
    const std::string hang = key(generation, "job") + "/hang/last";
    if (plan_.store->check({hang})) {
      return "zlaunch: job failed: the runtime reported a hang: " + plan_.store->get(hang) +
             "\n  first process to end: " + line;
    }
    return "zlaunch: job failed: " + line;
  }

  // The first rank of the job to exit 0 while this node's other workers
  // still run, for the root cause if the job then fails.
  void noteCleanExit(const Worker& w, int generation) {
    const std::string early = key(generation, "exit0");
    if (plan_.store->check({early})) return;
    const std::time_t now = std::time(nullptr);
    char when[16];
    std::strftime(when, sizeof when, "%H:%M:%S", std::localtime(&now));
    plan_.store->set(early, "rank " + std::to_string(w.rank) + " (node " +
                                std::to_string(plan_.node_rank) + ", local rank " +
                                std::to_string(w.local_rank) + ") exited 0 at " + when +
                                " while the job was running");
  }

  static std::string indent(const std::string& text) {
    std::string out;
    for (char c : text) out += c == '\n' ? std::string("\n  ") : std::string(1, c);
    return out;
  }

  // Watches workers, signals and the other nodes until this node's
  // workers all succeeded, one failed somewhere, a node died, or a stop
  // signal came. A job store that is gone (node 0's zlaunch died) is a
  // failure named here; the store is not used again.
  Outcome watch(int generation) {
    try {
      return watchWorkers(generation);
    } catch (const Error& e) {
      if (plan_.node_rank == 0) throw;
      store_lost_ = true;
      std::cerr << "zlaunch: job failed: node 0's zlaunch, which serves the job store at "
                << plan_.store_host << ":" << plan_.store_port << ", is gone (" << e.what()
                << ")\n";
      return Outcome::kFailed;
    }
  }

  // The other nodes' heartbeats: a dead one fails the job, named once.
  bool nodesDied(const std::string& failure) {
    if (liveness_.poll().empty()) return false;
    if (!plan_.store->check({failure})) {
      const std::string cause = "zlaunch: job failed: " + liveness_.describeDead();
      plan_.store->set(failure, cause);
      std::cerr << cause << "\n";
    }
    return true;
  }

  Outcome watchWorkers(int generation) {
    rendezvous::Store& store = *plan_.store;
    const std::string failure = key(generation, "failure");
    Worker* first_failed = nullptr;
    Clock::time_point failed_at;
    while (true) {
      std::this_thread::sleep_for(kTick);
      if (const int sig = g_signal.exchange(0); sig != 0) {
        const bool stop = sig == SIGINT || sig == SIGTERM;
        for (Worker& w : workers_) {
          w.process->signalGroup(sig);
          w.told_to_stop = w.told_to_stop || stop;
        }
        if (stop) {
          interrupted_by_ = sig;
          store.set(failure, "zlaunch: stopped by signal " + std::to_string(sig) + " on node " +
                                 std::to_string(plan_.node_rank));
          return Outcome::kInterrupted;
        }
      }
      std::vector<Worker*> exited_clean;
      bool preempted = false;
      for (Worker& w : workers_) {
        if (!w.done && w.process->poll(w.status)) {
          w.done = true;
          if (exitedWith(w, 0)) exited_clean.push_back(&w);
        }
        preempted = preempted || (w.done && exitedWith(w, kPreemptedExit));
      }
      bool all_done = true;
      for (Worker& w : workers_) all_done = all_done && w.done;
      if (!all_done && !exited_clean.empty()) noteCleanExit(*exited_clean.front(), generation);
      for (Worker& w : workers_) {
        if (w.done && !exitedWith(w, 0) && !exitedWith(w, kPreemptedExit) &&
            first_failed == nullptr) {
          first_failed = &w;
          failed_at = Clock::now();
        }
      }
      // Let the other workers settle first: a peer that saw the collective
      // time out is still writing the hang report that names the culprit.
      if (first_failed != nullptr && (all_done || Clock::now() - failed_at >= kSettle)) {
        if (!store.check({failure})) {
          const std::string cause = rootCause(*first_failed, generation);
          store.set(failure, cause);
          std::cerr << cause << "\n";
        }
        return Outcome::kFailed;
      }
      if (first_failed != nullptr) continue;
      if (all_done) return preempted ? Outcome::kPreempted : Outcome::kSuccess;
      if (store.check({failure}) || nodesDied(failure)) return Outcome::kFailed;
    }
  }

  // SIGTERM to every worker group not told to stop yet (exactly one each:
  // a save-on-preemption handler must not be re-entered), SIGKILL to those
  // left after the grace period.
  void stopAll() {
    for (Worker& w : workers_) {
      if (!w.done && !w.told_to_stop) w.process->signalGroup(SIGTERM);
      w.told_to_stop = true;
    }
    const auto deadline = Clock::now() + std::chrono::duration<double>(o_.grace_period);
    while (Clock::now() < deadline) {
      bool running = false;
      for (Worker& w : workers_)
        running = running || (!w.done && !(w.done = w.process->poll(w.status)));
      if (!running) break;
      std::this_thread::sleep_for(kTick);
    }
    retire();
  }

  // The generation's workers are over: each reaped with its group, then
  // what left their groups (re-parented to zlaunch, the subreaper) killed,
  // so that no pipe is held open and nothing runs on.
  void retire() {
    for (Worker& w : workers_) w.process->killAndReap();
    guard_.killOrphans();
    for (Worker& w : workers_) guard_.forgetGroup(w.process->pid());
    workers_.clear();  // joins the pumps (end of file now, or their drain period)
  }

  // Every live node reports `what` for this generation; wait until all
  // did (a node found dead meanwhile is not waited for).
  void arriveAndWait(int generation, const std::string& what) {
    if (store_lost_) return;
    try {
      rendezvous::Store& store = *plan_.store;
      const std::string counter = key(generation, what);
      store.add(counter, 1);
      const auto deadline = Clock::now() + kPeerWait;
      while (store.add(counter, 0) < liveNodes() && Clock::now() < deadline) {
        std::this_thread::sleep_for(kTick);
      }
    } catch (const Error&) {
      store_lost_ = plan_.node_rank != 0;
      if (!store_lost_) throw;
    }
  }

  int64_t liveNodes() { return plan_.node_count - static_cast<int64_t>(liveness_.poll().size()); }

  Outcome runGeneration(int generation) {
    start(generation);
    const Outcome outcome = watch(generation);
    if (outcome == Outcome::kSuccess) {
      retire();
    } else {
      stopAll();
    }
    // All nodes leave a generation together: node 0 keeps serving the store
    // until every node is out, and a restart begins everywhere at once.
    arriveAndWait(generation, "left");
    // This node may have finished before another node failed.
    if (outcome == Outcome::kSuccess && !store_lost_ &&
        plan_.store->check({key(generation, "failure")}))
      return Outcome::kFailed;
    return outcome;
  }

  // The last word with the store: other nodes say goodbye, node 0 (the
  // server) waits for them before it exits and takes the store down.
  int finish(bool ok, int code = 1) {
    if (store_lost_) return ok ? 0 : code;
    const std::string bye = run_id_ + "/bye";
    try {
      if (plan_.node_rank != 0) {
        plan_.store->add(bye, 1);
      } else {
        const auto deadline = Clock::now() + kPeerWait;
        while (plan_.store->add(bye, 0) < liveNodes() - 1 && Clock::now() < deadline) {
          std::this_thread::sleep_for(kTick);
        }
      }
    } catch (const Error&) {
      if (plan_.node_rank == 0) throw;  // node 0 serves the store itself
    }
    return ok ? 0 : code;
  }

  const LaunchOptions& o_;
  NodePlan& plan_;
  ProcessGuard& guard_;
  std::string run_id_;
  NodeLiveness liveness_;
  bool store_lost_ = false;  // node 0's store is gone: nothing more to say to it
  long omp_threads_ = 1;
  bool local_rank_arg_ = false;  // workers get --local_rank=N
  std::string alias_path_;       // first on the workers' PYTHONPATH; "" for none
  int interrupted_by_ = 0;
  std::vector<Worker> workers_;
};

}  // namespace

int defaultLocalSize() {
  const int gpus = kernels::cudaDeviceCount();
  return gpus > 0 ? gpus : 1;
}

int runController(const LaunchOptions& options, NodePlan& plan) {
  installSignalHandlers();
  ProcessGuard guard("/proc/self/exe");  // before the monitor's threads: it forks
  GpuMonitor monitor(plan.local_size, options.monitor_interval);
  if (!options.log_dir.empty()) {
    monitor.recordTo(options.log_dir + "/gpu_node" + std::to_string(plan.node_rank) + ".csv");
  }
  monitor.start();
  const int code = Controller(options, plan, guard).run();
  monitor.stop();
  std::cerr << monitor.report();
  // The run report, whatever the outcome (a failed run is when it helps);
  // its own failure changes nothing about the job's exit code.
  if (!options.log_dir.empty() && plan.node_rank == 0) runReport(options.log_dir, std::cerr);
  return code;
}

}  // namespace zshard::launcher
