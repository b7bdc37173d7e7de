#pragma once

// Runs a benchmark's peer (a Python script printing "<elements/s> <version>")
// in the same invocation and returns its rate; 0 when it could not run.
#include <cstdio>
#include <string>

namespace zshard::bench {

inline double runPeer(const std::string& command, std::string& version) {
  FILE* pipe = popen((command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return 0;
  double rate = 0;
  char ver[64] = {0};
  if (std::fscanf(pipe, "%lf %63s", &rate, ver) != 2) rate = 0;
  pclose(pipe);
  version = ver;
  return rate;
}

}  // namespace zshard::bench
