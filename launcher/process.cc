#include "launcher/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/core/error.h"

namespace zshard::launcher {

namespace {

[[noreturn]] void execChild(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env, int out_w, int err_w,
                            pid_t parent) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);  // the controller died before prctl
  dup2(out_w, STDOUT_FILENO);
  dup2(err_w, STDERR_FILENO);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvpe(args[0], args.data(), envp.data());
  const std::string msg = "zlaunch: cannot run " + argv[0] + ": " + std::strerror(errno) + "\n";
  (void)!write(STDERR_FILENO, msg.data(), msg.size());
  _exit(127);
}

}  // namespace

Process::Process(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw IoError(std::string("pipe() failed: ") + std::strerror(errno));
  }
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw IoError(std::string("fork() failed: ") + std::strerror(errno));
  if (pid_ == 0) execChild(argv, env, out[1], err[1], parent);
  setpgid(pid_, pid_);  // also from the parent: no race with signalGroup
  close(out[1]);
  close(err[1]);
  out_fd_ = out[0];
  err_fd_ = err[0];
}

void Process::killAndReap() {
  signalGroup(SIGKILL);
  if (reaped_) return;
  int status;
  waitpid(pid_, &status, 0);
  reaped_ = true;
}

Process::~Process() {
  killAndReap();
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
}

void Process::signalGroup(int signal) const {
  if (pid_ > 0) kill(-pid_, signal);
}

bool Process::poll(int& status) {
  if (reaped_) return true;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    signalGroup(SIGKILL);  // whatever the worker left behind in its group
    return true;
  }
  return false;
}

std::string describeStatus(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  }
  return "status " + std::to_string(status);
}

std::string pythonExecutable() {
  const char* p = std::getenv("ZSHARD_PYTHON");
  if (p != nullptr && *p != '\0') return p;
  return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

}  // namespace zshard::launcher
