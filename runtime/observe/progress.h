#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace zshard::observe {

// Progress of one long operation over a known number of bytes (a
// checkpoint save or load). On a terminal (stderr is a tty) a line redrawn
// at most 5 times a second: "<label>: 1.2 / 4.0 GiB, 850 MB/s, ETA 3 s";
// otherwise one summary line at finish(): "<label>: 4.0 GiB in 4.7 s
// (850 MB/s)". Silent unless `shown`, and for operations under
// minimumBytes() (ZSHARD_PROGRESS_MIN_BYTES, default 256 MiB), which finish
// too fast to need it. A Progress destroyed without finish() (the operation
// threw) ends its terminal line and says nothing more. Not thread-safe.
class Progress {
 public:
  Progress(std::string label, int64_t total_bytes, bool shown);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t bytes);
  void finish();

  static int64_t minimumBytes();

 private:
  using Clock = std::chrono::steady_clock;
  void draw(bool final);

  std::string label_;
  int64_t total_, done_ = 0;
  bool active_, terminal_, finished_ = false;
  Clock::time_point start_, last_draw_;
};

// "1.50 GiB", "12.0 MiB", "512 B".
std::string humanBytes(double bytes);

}  // namespace zshard::observe
