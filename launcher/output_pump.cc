#include "launcher/output_pump.h"

#include <poll.h>
#include <unistd.h>

#include <sys/stat.h>

namespace zshard::launcher {

namespace {

constexpr size_t kTailLines = 8;

}  // namespace

OutputPump::OutputPump(int rank, int stdout_fd, int stderr_fd, const std::string& log_dir,
                       bool console)
    : prefix_("[rank " + std::to_string(rank) + "] "), console_(console) {
  if (!log_dir.empty()) {
    mkdir(log_dir.c_str(), 0755);
    log_.open(log_dir + "/rank" + std::to_string(rank) + ".log", std::ios::app);
  }
  thread_ = std::thread([this, stdout_fd, stderr_fd] { run(stdout_fd, stderr_fd); });
}

namespace {

int64_t nowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

OutputPump::~OutputPump() {
  finish();
}

void OutputPump::finish(std::chrono::milliseconds drain) {
  int64_t none = 0;
  stop_at_.compare_exchange_strong(
      none, nowNanos() + std::chrono::duration_cast<std::chrono::nanoseconds>(drain).count());
  if (thread_.joinable()) thread_.join();
}

std::string OutputPump::stderrTail() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const std::string& l : tail_) out += (out.empty() ? "" : "\n") + l;
  return out;
}

void OutputPump::emit(bool is_err, const std::string& line) {
  const std::string text = prefix_ + line + "\n";
  if (console_) (void)!write(is_err ? STDERR_FILENO : STDOUT_FILENO, text.data(), text.size());
  std::lock_guard<std::mutex> lock(mutex_);
  if (log_.is_open()) log_ << line << "\n" << std::flush;
  if (is_err) {
    tail_.push_back(line);
    if (tail_.size() > kTailLines) tail_.pop_front();
  }
}

void OutputPump::run(int out_fd, int err_fd) {
  std::string pending[2];
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_count = 2;
  char buffer[4096];
  while (open_count > 0) {
    const int64_t stop_at = stop_at_.load();
    if (stop_at != 0 && nowNanos() >= stop_at) break;
    if (::poll(fds, 2, 100) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        if (!pending[i].empty()) emit(i == 1, pending[i]);
        pending[i].clear();
        fds[i].fd = -1;
        --open_count;
        continue;
      }
      pending[i].append(buffer, static_cast<size_t>(n));
      size_t newline;
      while ((newline = pending[i].find('\n')) != std::string::npos) {
        emit(i == 1, pending[i].substr(0, newline));
        pending[i].erase(0, newline + 1);
      }
    }
  }
  for (int i = 0; i < 2; ++i) {
    if (!pending[i].empty()) emit(i == 1, pending[i]);
  }
}

}  // namespace zshard::launcher
