#include "runtime/observe/monitor.h"

#include <charconv>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace zshard::observe {

std::string shortestDecimal(double value) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, value).ptr);
}

MonitorWriter::MonitorWriter(std::vector<std::unique_ptr<MonitorSink>> sinks)
    : sinks_(std::move(sinks)), thread_([this] { loop(); }) {}

MonitorWriter::~MonitorWriter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void MonitorWriter::write(std::vector<Scalar> scalars) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(scalars));
  }
  wake_.notify_all();
}

void MonitorWriter::flush() {
  std::unique_lock<std::mutex> lock(mutex_);
  const int64_t ticket = ++flush_requested_;
  wake_.notify_all();
  drained_.wait(lock, [&] { return flush_done_ >= ticket; });
}

std::vector<std::string> MonitorWriter::sinks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& s : sinks_) out.push_back(s->describe());
  return out;
}

void MonitorWriter::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock,
               [&] { return stopping_ || !queue_.empty() || flush_requested_ > flush_done_; });
    std::deque<std::vector<Scalar>> batches;
    batches.swap(queue_);
    const int64_t flush_to = flush_requested_;
    const bool stop = stopping_;
    const bool and_flush = stop || flush_to > flush_done_;
    lock.unlock();
    for (size_t i = 0; i < batches.size(); ++i) deliver(batches[i], false);
    if (and_flush) deliver({}, true);
    lock.lock();
    flush_done_ = flush_to;
    drained_.notify_all();
    if (stop && queue_.empty()) return;
  }
}

// Writes `batch` to every sink (and flushes them); a sink that throws is
// named in one warning and dropped.
void MonitorWriter::deliver(const std::vector<Scalar>& batch, bool and_flush) {
  for (size_t i = 0; i < sinks_.size();) {
    try {
      if (!batch.empty()) sinks_[i]->write(batch);
      if (and_flush) sinks_[i]->flush();
      ++i;
    } catch (const std::exception& e) {
      log(LogLevel::kWarning, sinks_[i]->describe() + " stopped writing: " + e.what() +
                                  "; training goes on without it");
      std::lock_guard<std::mutex> lock(mutex_);
      sinks_.erase(sinks_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
}

namespace {

void openInto(std::vector<std::unique_ptr<MonitorSink>>& sinks, const char* what,
              const std::string& where, std::unique_ptr<MonitorSink> (*make)(const std::string&)) {
  if (where.empty()) return;
  try {
    sinks.push_back(make(where));
  } catch (const std::exception& e) {
    log(LogLevel::kWarning, std::string(what) + " (" + where + "): cannot write there: " +
                                e.what() + "; training goes on without it");
  }
}

}  // namespace

std::unique_ptr<MonitorWriter> openMonitors(const MonitorPaths& paths) {
  std::vector<std::unique_ptr<MonitorSink>> sinks;
  openInto(sinks, "csv_monitor", paths.csv_dir, &makeCsvMonitor);
  openInto(sinks, "tensorboard", paths.tensorboard_dir, &makeTensorboardMonitor);
  openInto(sinks, "run log", paths.run_log, &makeJsonLinesMonitor);
  return std::make_unique<MonitorWriter>(std::move(sinks));
}

}  // namespace zshard::observe
