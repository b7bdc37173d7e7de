#pragma once

// A field of /proc/self/status (VmRSS in kB, Threads, ...), for tests and
// benchmarks that bound what a process holds; -1 when absent.
#include <cstdint>
#include <fstream>
#include <string>

namespace zshard::testing {

inline int64_t statusField(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

}  // namespace zshard::testing
