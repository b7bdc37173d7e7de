#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

namespace zshard::launcher {

// Copies one worker's stdout and stderr line by line to the controller's
// stdout/stderr with a "[rank N] " prefix (whole lines, one write each),
// optionally to <log_dir>/rank<N>.log (with --tee, also still to the
// console), and keeps the last lines of stderr for the root-cause report.
// Runs on its own thread until both pipes close, or until a drain period
// after finish() (a process outside the worker's group may hold the pipes).
class OutputPump {
 public:
  OutputPump(int rank, int stdout_fd, int stderr_fd, const std::string& log_dir, bool console);
  ~OutputPump();  // finish(kDrain)
  // The worker ended: reads what is still coming for at most `drain`, then
  // stops (the pipes are left to their owner) and joins.
  void finish(std::chrono::milliseconds drain = kDrain);
  static constexpr std::chrono::milliseconds kDrain{2000};
  // The last few stderr lines, oldest first.
  std::string stderrTail() const;

 private:
  void run(int out_fd, int err_fd);
  void emit(bool is_err, const std::string& line);

  std::string prefix_;
  bool console_;
  std::ofstream log_;
  mutable std::mutex mutex_;
  std::deque<std::string> tail_;
  // Steady-clock nanoseconds after which run() stops; 0 while none is set.
  std::atomic<int64_t> stop_at_{0};
  std::thread thread_;
};

}  // namespace zshard::launcher
