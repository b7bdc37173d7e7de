#pragma once

#include <functional>
#include <string>

namespace zshard {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Writes "[zshard rank R] LEVEL: message" to stderr (one write per line, so
// lines of concurrent ranks do not interleave) when level >= the threshold
// (ZSHARD_LOG_LEVEL=debug|info|warning|error; default info). Thread-safe.
void log(LogLevel level, const std::string& message);

// The rank shown in the prefix (-1: none). Set once the topology is known.
void setLogRank(int rank);

// Tests capture lines here instead of stderr; nullptr restores stderr.
void setLogSink(std::function<void(LogLevel, const std::string&)> sink);

}  // namespace zshard
