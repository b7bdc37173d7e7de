#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace zshard::observe {

// One monitored value: DeepSpeed's (tag, value, step) event, step being
// the global sample count for Train/Samples/* tags.
struct Scalar {
  std::string tag;
  double value = 0;
  int64_t step = 0;
};

// `value` as the shortest text that reads back as the same double (what
// Python's repr writes, and DeepSpeed's csv files hold).
std::string shortestDecimal(double value);

// Where monitored values go (a CSV directory, a TensorBoard event file, a
// run log). Called from one thread only (MonitorWriter's). write() may
// buffer; flush() makes everything written durable. Both throw Error (an
// IoError naming the path) when the disk refuses.
class MonitorSink {
 public:
  virtual ~MonitorSink() = default;
  virtual void write(const std::vector<Scalar>& scalars) = 0;
  virtual void flush() = 0;
  virtual std::string describe() const = 0;  // "csv_monitor (out/job)"
};

// DeepSpeed's csv_monitor layout: under `dir`, one <tag with / and spaces
// as _>.csv per tag, a header "step,<last part of the tag>", then step,value
// rows. Makes `dir`.
std::unique_ptr<MonitorSink> makeCsvMonitor(const std::string& dir);
// An events.out.tfevents.<time>.<host> file under `dir` (made) that
// TensorBoard reads: TFRecord framing with masked CRC32C, Event protos
// with scalar summaries.
std::unique_ptr<MonitorSink> makeTensorboardMonitor(const std::string& dir);
// One JSON object per line, {"tag":..,"value":..,"step":..,"time":..},
// appended to `path`: the run report's input.
std::unique_ptr<MonitorSink> makeJsonLinesMonitor(const std::string& path);

// Hands scalars to its sinks on a thread of its own, so writing never
// blocks the caller. A sink that fails is reported once (a warning naming
// it and the error) and dropped; training goes on. The destructor flushes.
// write() and flush() are thread-safe.
class MonitorWriter {
 public:
  explicit MonitorWriter(std::vector<std::unique_ptr<MonitorSink>> sinks);
  ~MonitorWriter();
  void write(std::vector<Scalar> scalars);
  // Blocks until everything written so far has reached the sinks and they
  // have flushed (checkpoints, exit).
  void flush();
  // The sinks still writing, described.
  std::vector<std::string> sinks() const;

 private:
  void loop();
  void deliver(const std::vector<Scalar>& batch, bool and_flush);

  std::vector<std::unique_ptr<MonitorSink>> sinks_;
  mutable std::mutex mutex_;
  std::condition_variable wake_, drained_;
  std::deque<std::vector<Scalar>> queue_;
  int64_t flush_requested_ = 0, flush_done_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

// Where a job's monitored values go; "" leaves a sink out.
struct MonitorPaths {
  std::string csv_dir, tensorboard_dir, run_log;
};

// A writer over the sinks `paths` names. A sink that cannot be opened (an
// unwritable path) is one warning naming it and is left out: monitoring
// never stops training.
std::unique_ptr<MonitorWriter> openMonitors(const MonitorPaths& paths);

}  // namespace zshard::observe
