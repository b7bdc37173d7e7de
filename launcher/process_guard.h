#pragma once

#include <sys/types.h>

#include <string>

namespace zshard::launcher {

// Makes sure nothing a worker started outlives zlaunch:
// - zlaunch becomes a child subreaper, so a worker's orphaned descendants
//   (a helper that left the worker's process group with setsid) are
//   re-parented to zlaunch, and killOrphans() ends them;
// - a guard process, forked before anything else, holds the read end of a
//   pipe from zlaunch and knows every worker's process group; when zlaunch
//   dies in any way (kill -9 included) the pipe reaches end of file and the
//   guard kills those groups (workers die by PR_SET_PDEATHSIG; this takes
//   their children with them).
// One per zlaunch process; not thread-safe (the controller's thread).
class ProcessGuard {
 public:
  // `executable`: zlaunch itself, which the guard runs as
  // `zlaunch --process-guard` (so that it shows as such, with none of the
  // job's arguments); empty: the guard runs on in the forked copy.
  explicit ProcessGuard(const std::string& executable = "");
  ~ProcessGuard();  // the guard exits (its groups were stopped by then)
  ProcessGuard(const ProcessGuard&) = delete;
  ProcessGuard& operator=(const ProcessGuard&) = delete;

  // A worker's process group, to kill if zlaunch dies; forget it once the
  // group was stopped (its number may be reused later).
  void watchGroup(pid_t pgid);
  void forgetGroup(pid_t pgid);
  // SIGKILL to every child of zlaunch but the guard, reaping each: call it
  // once the workers were reaped (what is left came by re-parenting).
  void killOrphans();

 private:
  void send(int value);

  pid_t guard_ = -1;
  int pipe_ = -1;  // write end
};

// The guard's loop on descriptor 3 (zlaunch --process-guard): returns
// once zlaunch is gone, having killed the groups it was told of.
void runProcessGuard();

inline constexpr const char* kProcessGuardFlag = "--process-guard";

}  // namespace zshard::launcher
