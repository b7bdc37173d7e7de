// Faults of the process tree zlaunch owns (issue 15's list): one SIGTERM
// per worker, so that a save-on-preemption handler runs once; kill -9 of
// zlaunch takes every worker and its process group with it; a helper that
// left the worker's group (setsid) and holds its stdout neither keeps
// zlaunch waiting nor survives it. Real processes; leftovers are found by
// a marker in their command line.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/support/shell.h"

namespace {

using zshard::testing::leftovers;

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

const std::string kZlaunch = ZLAUNCH_PATH;

// zlaunch started in the background with `args`; its pid.
pid_t startZlaunch(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(kZlaunch.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(kZlaunch.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

template <typename F>
bool waitUntil(F done, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

int lines(const fs::path& file) {
  std::ifstream in(file);
  int n = 0;
  for (std::string l; std::getline(in, l);) ++n;
  return n;
}

class ProcessTree : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("zshard_tree_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// A worker whose SIGTERM handler takes a second (a checkpoint save): each
// of 3 workers sees exactly one SIGTERM when zlaunch is told to stop.
TEST_F(ProcessTree, EachWorkerGetsExactlyOneSigterm) {
  const fs::path script = dir_ / "saver.py";
  std::ofstream(script) << "import os, signal, sys, time\n"
                           "out = sys.argv[1] + '/rank' + os.environ['RANK']\n"
                           "def on_term(sig, frame):\n"
                           "    open(out, 'a').write('term\\n')\n"
                           "    time.sleep(1.0)\n"
                           "    sys.exit(0)\n"
                           "signal.signal(signal.SIGTERM, on_term)\n"
                           "open(out + '.up', 'w').close()\n"
                           "time.sleep(60)\n";
  const pid_t zl = startZlaunch(
      {"--nproc-per-node", "3", "--grace-period", "5", script.string(), dir_.string()});
  ASSERT_TRUE(waitUntil(
      [&] {
        return fs::exists(dir_ / "rank0.up") && fs::exists(dir_ / "rank1.up") &&
               fs::exists(dir_ / "rank2.up");
      },
      std::chrono::seconds(60)));
  kill(zl, SIGTERM);
  int status = 0;
  waitpid(zl, &status, 0);
  for (int r = 0; r < 3; ++r) EXPECT_EQ(lines(dir_ / ("rank" + std::to_string(r))), 1) << r;
}

// kill -9 of zlaunch: the workers die (PR_SET_PDEATHSIG) and so do the
// children they started in their groups (the guard process kills them).
TEST_F(ProcessTree, KillNineOfZlaunchLeavesNoWorkerNorItsChildren) {
  const std::string marker = "300.8181";
  const pid_t zl = startZlaunch(
      {"--nproc-per-node", "2", "sh", "-c", "sleep " + marker + " & sleep " + marker + "; wait"});
  ASSERT_TRUE(
      waitUntil([&] { return leftovers("sleep " + marker) >= 4; }, std::chrono::seconds(30)));
  kill(zl, SIGKILL);
  waitpid(zl, nullptr, 0);
  EXPECT_TRUE(waitUntil([&] { return leftovers("sleep " + marker) == 0; }, std::chrono::seconds(5)))
      << leftovers("sleep " + marker) << " left";
}

// A helper that left the worker's process group (setsid) and keeps its
// stdout: zlaunch still ends soon after the worker, and the helper with it.
TEST_F(ProcessTree, ASetsidHelperHoldingStdoutNeitherKeepsZlaunchNorSurvivesIt) {
  const std::string marker = "300.9292";
  const zshard::testing::ShellResult r = zshard::testing::runShell(
      kZlaunch + " --nproc-per-node 1 sh -c 'setsid sleep " + marker + " & echo started; exit 0'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT(r.seconds, 8.0) << r.output;
  EXPECT_NE(r.output.find("[rank 0] started"), std::string::npos) << r.output;
  EXPECT_EQ(leftovers("sleep " + marker), 0);
}

}  // namespace
