#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace zshard::observe {

// Microseconds on the steady clock (CLOCK_MONOTONIC: the same clock as
// Python's time.monotonic_ns), the time base of every trace slice.
int64_t nowMicros();

// One slice of a thread's timeline.
struct Slice {
  std::string name;
  const char* category = "";  // static strings only
  int thread = 0;
  int64_t begin_us = 0, end_us = 0;
  std::string args_json;  // "" or a JSON object's members: "\"bytes\": 4096"
};

// The process's timeline in Chrome's trace-event format: complete ("X")
// slices per thread, written per rank (pid = rank, tid = thread). Off until
// setRecording(true); while off, recording() is one relaxed atomic load and
// slice() returns at once. At most kMaxSlices are kept (later ones are
// counted as dropped and said so in the file). Thread-safe.
class Trace {
 public:
  static constexpr size_t kMaxSlices = 500'000;  // about 60 MiB

  static Trace& get();
  void setRecording(bool on) { recording_.store(on, std::memory_order_relaxed); }
  bool recording() const { return recording_.load(std::memory_order_relaxed); }
  // Names the calling thread's track ("main", "comm", "comm-gather").
  void nameThread(const std::string& name);
  void slice(std::string name, const char* category, int64_t begin_us, int64_t end_us,
             std::string args_json = "");
  // Writes {"traceEvents": [...]} for `rank` to `path` (atomically: a
  // .tmp renamed). Returns the number of slices written. Throws Error
  // naming the path on an I/O failure.
  size_t write(const std::string& path, int rank) const;
  size_t size() const;
  void clear();

 private:
  int threadId();

  std::atomic<bool> recording_{false};
  mutable std::mutex mutex_;
  std::vector<Slice> slices_;
  std::unordered_map<int, std::string> thread_names_;
  size_t dropped_ = 0;
};

// Records [construction, destruction) as a slice on this thread when the
// trace is recording at construction.
class TraceScope {
 public:
  TraceScope(const char* name, const char* category)
      : name_(name), category_(category), begin_(Trace::get().recording() ? nowMicros() : -1) {}
  ~TraceScope() {
    if (begin_ >= 0) Trace::get().slice(name_, category_, begin_, nowMicros());
  }
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  const char* name_;
  const char* category_;
  int64_t begin_;
};

// JSON string escaping for names and arguments.
std::string jsonEscape(const std::string& text);

}  // namespace zshard::observe
