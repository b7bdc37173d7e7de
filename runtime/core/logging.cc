#include "runtime/core/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace zshard {

namespace {

std::atomic<int> g_rank{-1};
std::mutex g_sink_mutex;
std::function<void(LogLevel, const std::string&)> g_sink;

LogLevel threshold() {
  static const LogLevel level = [] {
    const char* env = std::getenv("ZSHARD_LOG_LEVEL");
    if (env == nullptr) return LogLevel::kInfo;
    if (std::strcmp(env, "debug") == 0) return LogLevel::kDebug;
    if (std::strcmp(env, "warning") == 0) return LogLevel::kWarning;
    if (std::strcmp(env, "error") == 0) return LogLevel::kError;
    return LogLevel::kInfo;
  }();
  return level;
}

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kWarning: return "WARNING";
    case LogLevel::kError: return "ERROR";
    default: return "INFO";
  }
}

}  // namespace

void log(LogLevel level, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(g_sink_mutex);
    if (g_sink) return g_sink(level, message);
  }
  if (level < threshold()) return;
  const int rank = g_rank.load();
  std::string line = rank >= 0 ? "[zshard rank " + std::to_string(rank) + "] " : "[zshard] ";
  line += std::string(levelName(level)) + ": " + message + "\n";
  const ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

void setLogRank(int rank) {
  g_rank.store(rank);
}

void setLogSink(std::function<void(LogLevel, const std::string&)> sink) {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  g_sink = std::move(sink);
}

}  // namespace zshard
