#include "runtime/observe/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace zshard::observe {

namespace {

constexpr int64_t kDefaultMinimum = 256ll << 20;
constexpr double kRedrawSeconds = 0.2;

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

std::string humanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

int64_t Progress::minimumBytes() {
  const char* v = std::getenv("ZSHARD_PROGRESS_MIN_BYTES");
  if (v == nullptr || *v == '\0') return kDefaultMinimum;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  return (end != nullptr && *end == '\0' && n >= 0) ? n : kDefaultMinimum;
}

Progress::Progress(std::string label, int64_t total_bytes, bool shown)
    : label_(std::move(label)),
      total_(total_bytes),
      active_(shown && total_bytes >= minimumBytes()),
      terminal_(isatty(STDERR_FILENO) == 1),
      start_(Clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (active_ && terminal_ && !finished_ && done_ > 0) std::fputs("\n", stderr);
}

void Progress::advance(int64_t bytes) {
  done_ += bytes;
  if (!active_ || !terminal_) return;
  const Clock::time_point now = Clock::now();
  if (seconds(now - last_draw_) < kRedrawSeconds) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (active_) draw(true);
}

void Progress::draw(bool final) {
  const double elapsed = seconds(Clock::now() - start_);
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
  char line[256];
  if (final) {
    std::snprintf(line, sizeof line, "%s%s: %s in %.1f s (%.0f MB/s)\n", terminal_ ? "\r" : "",
                  label_.c_str(), humanBytes(static_cast<double>(done_)).c_str(), elapsed,
                  rate / 1e6);
  } else {
    const double left = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0;
    std::snprintf(line, sizeof line, "\r%s: %s / %s, %.0f MB/s, ETA %.0f s   ", label_.c_str(),
                  humanBytes(static_cast<double>(done_)).c_str(),
                  humanBytes(static_cast<double>(total_)).c_str(), rate / 1e6, left);
  }
  std::fputs(line, stderr);
  std::fflush(stderr);
}

}  // namespace zshard::observe
