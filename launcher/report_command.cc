#include "launcher/report_command.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>
#include <vector>

#include "launcher/process.h"

namespace zshard::launcher {

int runReport(const std::string& log_dir, std::ostream& err) {
  const std::string python = pythonExecutable();
  std::vector<std::string> args = {python, "-m", "zshard.report", log_dir};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    err << "zlaunch: report: cannot fork: " << std::strerror(errno) << "\n";
    return 1;
  }
  if (pid == 0) {
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code == 127) {
    err << "zlaunch: report: could not run " << python
        << " -m zshard.report (set ZSHARD_PYTHON to the Python that has zshard)\n";
  }
  return code;
}

}  // namespace zshard::launcher
