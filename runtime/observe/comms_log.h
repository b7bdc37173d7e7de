#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace zshard::observe {

// nccl-tests' bus-bandwidth factor for a collective over `ranks` ranks:
// algorithm bandwidth (bytes / time) times this is the bus bandwidth, what
// a link carries. all_reduce 2(n-1)/n; reduce_scatter, all_gather
// (n-1)/n; broadcast 1; barrier 0. `op` in DeepSpeed's names.
double busBandwidthFactor(const std::string& op, int ranks);

// DeepSpeed's name for one of the Communicator's collectives
// ("reduceScatter" -> "reduce_scatter").
std::string deepspeedOpName(const std::string& communicator_op);

// One line of the communication table: a collective type at one message
// size (bytes: the whole buffer, as nccl-tests' "size").
struct CommsRow {
  std::string op;
  int64_t bytes = 0;
  int64_t count = 0;
  double mean_us = 0, p50_us = 0, p99_us = 0;
  double algbw_gbps = 0, busbw_gbps = 0;  // from the mean latency, GB/s (1e9)
};

// DeepSpeed's comms_logger: every collective's type, size and latency,
// summarised per (type, size). Off until configure(enabled = true).
// Thread-safe (the communication threads record, the main thread reads).
class CommsLog {
 public:
  static CommsLog& get();
  // `ops` empty: every collective (prof_all); else only these (DeepSpeed's
  // names). `verbose`: also log a line per collective.
  void configure(bool enabled, bool verbose, std::set<std::string> ops);
  bool enabled() const;
  void record(const std::string& communicator_op, int64_t bytes, int ranks, int64_t micros);
  // The rows ordered by type then size.
  std::vector<CommsRow> summary() const;
  // summary() as DeepSpeed's log_summary-style text table.
  std::string table() const;
  void clear();

 private:
  mutable std::mutex mutex_;
  // Atomic: collectiveDone reads it without the lock, so a log that is off
  // costs a collective one load, not a name built and a mutex taken.
  std::atomic<bool> enabled_{false};
  bool verbose_ = false;
  std::set<std::string> ops_;
  int ranks_ = 1;
  std::map<std::pair<std::string, int64_t>, std::vector<int64_t>> latencies_;
};

// What a communication thread calls once a collective has completed: feeds
// the comms log (when enabled) and the trace (when recording), and the wait
// clock below does not count it. `sequence` and `communicator` name it in
// the trace (sequence < 0: none).
void collectiveDone(const char* op, int64_t bytes, int ranks, int64_t sequence,
                    const std::string& communicator, int64_t begin_us, int64_t end_us);

// A thread blocked on a collective (Work::wait) adds its time here: the
// communication the step could not hide. Monotonic, process-wide.
void addWaited(int64_t micros);
int64_t waitedMicros();

}  // namespace zshard::observe
