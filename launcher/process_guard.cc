#include "launcher/process_guard.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace zshard::launcher {

namespace {

constexpr int kMaxGroups = 4096;

// Reads +pgid / -pgid from descriptor 3 until end of file, then kills the
// groups still known. Only async-signal-safe calls, no allocation: it may
// run in the forked copy of a process with threads.
void guardLoop() {
  static pid_t groups[kMaxGroups];
  int count = 0;
  int value = 0;
  while (true) {
    const ssize_t n = read(3, &value, sizeof value);
    if (n == static_cast<ssize_t>(sizeof value)) {
      if (value > 0 && count < kMaxGroups) groups[count++] = value;
      for (int i = 0; value < 0 && i < count; ++i) {
        if (groups[i] == -value) groups[i] = groups[--count];
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // end of file: zlaunch is gone, however it ended
  }
  for (int i = 0; i < count; ++i) kill(-groups[i], SIGKILL);
}

// The forked guard: signals for zlaunch's group ignored, nothing of
// zlaunch's kept open (its output, a store socket) but the pipe, moved to
// descriptor 3, so that whoever reads zlaunch's output sees its end when
// zlaunch ends; then zlaunch --process-guard, or the loop in place.
[[noreturn]] void startGuard(int read_fd, const char* executable) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGTSTP})
    signal(sig, SIG_IGN);
  if (read_fd < 3) read_fd = fcntl(read_fd, F_DUPFD, 3);  // zlaunch ran with a closed stdio
  const int null_fd = open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3 && null_fd >= 0; ++fd) dup2(null_fd, fd);
  if (read_fd != 3) dup2(read_fd, 3);  // without close-on-exec, unlike the pipe
  fcntl(3, F_SETFD, 0);
  if (syscall(SYS_close_range, 4u, ~0u, 0) != 0) {
    for (int fd = 4; fd < 4096; ++fd) close(fd);
  }
  if (executable != nullptr) {
    execl(executable, "zlaunch", kProcessGuardFlag, static_cast<char*>(nullptr));
  }
  guardLoop();
  _exit(0);
}

// The parent pid in /proc/<pid>/stat (after the command in parentheses).
pid_t parentOf(const char* pid) {
  std::ifstream in(std::string("/proc/") + pid + "/stat");
  std::string stat;
  std::getline(in, stat);
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 4 > stat.size()) return -1;
  return static_cast<pid_t>(std::atol(stat.c_str() + close + 4));  // ") S ppid"
}

}  // namespace

void runProcessGuard() {
  guardLoop();
}

ProcessGuard::ProcessGuard(const std::string& executable) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int fds[2];
  // Close-on-exec: a worker holding the write end would keep the guard
  // from ever seeing zlaunch's end.
  if (pipe2(fds, O_CLOEXEC) != 0) return;  // no guard: workers still die by PDEATHSIG
  const char* exe = executable.empty() ? nullptr : executable.c_str();
  guard_ = fork();
  if (guard_ == 0) {
    close(fds[1]);
    startGuard(fds[0], exe);
  }
  close(fds[0]);
  pipe_ = fds[1];
  if (guard_ < 0) {
    close(pipe_);
    pipe_ = -1;
  }
}

ProcessGuard::~ProcessGuard() {
  if (pipe_ >= 0) close(pipe_);
  if (guard_ > 0) waitpid(guard_, nullptr, 0);
}

void ProcessGuard::send(int value) {
  if (pipe_ >= 0) (void)!write(pipe_, &value, sizeof value);
}

void ProcessGuard::watchGroup(pid_t pgid) {
  send(static_cast<int>(pgid));
}

void ProcessGuard::forgetGroup(pid_t pgid) {
  send(-static_cast<int>(pgid));
}

// An orphan's own children come to zlaunch when it dies: a few passes.
void ProcessGuard::killOrphans() {
  const pid_t self = getpid();
  for (int pass = 0; pass < 4; ++pass) {
    DIR* proc = opendir("/proc");
    if (proc == nullptr) return;
    int killed = 0;
    while (const dirent* e = readdir(proc)) {
      const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
      if (pid <= 0 || pid == guard_ || parentOf(e->d_name) != self) continue;
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      ++killed;
    }
    closedir(proc);
    if (killed == 0) return;
  }
}

}  // namespace zshard::launcher
