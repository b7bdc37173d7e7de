#pragma once

// Runs test code in forked processes: real ranks, real sockets, real
// deaths. The caller must have no live threads when forking (fork copies
// only the calling thread, so a lock held by another thread would stay
// locked forever in the child); start servers inside a child instead.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace zshard::testing {

// A forked child running fn; its exit code is fn's return (1 if it throws).
class Child {
 public:
  explicit Child(const std::function<int()>& fn) {
    pid_ = fork();
    if (pid_ == 0) {
      int code = 1;
      try {
        code = fn();
      } catch (...) {
      }
      _exit(code);
    }
  }
  Child(Child&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void kill(int signal = SIGKILL) { ::kill(pid_, signal); }

  // The raw wait status, or -1 if the child is still running after `timeout`
  // (it is then killed).
  int wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

// Forks one child per rank running fn(rank) and waits for all of them.
// Returns each rank's exit code (-1: killed after the timeout, 128+sig: signal).
inline std::vector<int> runRanks(int ranks, const std::function<int(int)>& fn,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  std::vector<Child> children;
  for (int r = 0; r < ranks; ++r) children.emplace_back([&fn, r] { return fn(r); });
  std::vector<int> codes;
  for (Child& c : children) {
    const int status = c.wait(timeout);
    codes.push_back(status < 0          ? -1
                    : WIFEXITED(status) ? WEXITSTATUS(status)
                                        : 128 + WTERMSIG(status));
  }
  return codes;
}

// A child that runs `serve(write_fd)`: it must write one line (e.g. a port)
// to the fd and then serve until killed. Returns the line.
inline std::string readLine(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

}  // namespace zshard::testing
