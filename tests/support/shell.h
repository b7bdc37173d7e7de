#pragma once

// Runs a shell command for integration tests and captures what it printed.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace zshard::testing {

struct ShellResult {
  int exit_code = -1;  // -1: did not exit normally
  std::string output;  // stdout and stderr together
  double seconds = 0;
};

inline ShellResult runShell(const std::string& command);

// Processes still running whose command line contains `marker` (the first
// character bracketed so that the searching shell does not match itself).
inline int leftovers(const std::string& marker) {
  const std::string pattern = "[" + marker.substr(0, 1) + "]" + marker.substr(1);
  const std::string out = runShell("pgrep -f -c -- '" + pattern + "' || true").output;
  return out.empty() ? 0 : std::stoi(out);
}

inline ShellResult runShell(const std::string& command) {
  ShellResult r;
  const auto t0 = std::chrono::steady_clock::now();
  FILE* pipe = popen(("( " + command + " ) 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) r.output.append(buffer, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace zshard::testing
