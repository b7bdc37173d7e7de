#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace zshard::launcher {

// A worker process: fork + exec of argv with exactly `env`, in its own
// process group (so signals reach its children too), killed by the kernel
// if the controller dies (PR_SET_PDEATHSIG). stdout and stderr are pipes the
// caller reads. Never leaves a zombie: the caller reaps through wait().
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  int stdoutFd() const { return out_fd_; }
  int stderrFd() const { return err_fd_; }
  // Sends `signal` to the whole process group.
  void signalGroup(int signal) const;
  // Non-blocking reap; true (and the raw status) once the process ended.
  // Once reaped, whatever it left in its group is killed.
  bool poll(int& status);
  // Blocking reap (SIGKILL first to what is left of the group), for a
  // worker that was already told to stop.
  void killAndReap();
  bool running() const { return !reaped_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  bool reaped_ = false;
};

// The Python that runs SCRIPT.py workers and zlaunch's own Python tools:
// ZSHARD_PYTHON, else /usr/bin/python3 (Debian's, with torch), else python3.
std::string pythonExecutable();

// "exit code 3" / "signal 9 (Killed)" for a raw wait status.
std::string describeStatus(int status);

}  // namespace zshard::launcher
