// zlaunch starting real workers (tests/integration/worker_probe_main.cc):
// ranks and variables, the runtime's rendezvous through the job store,
// failure propagation with one root-cause line, signals, restarts, an
// intruder refused, PMIx controllers under mpirun, and no process left over.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>

#include "tests/support/shell.h"

namespace {

using zshard::testing::leftovers;

using Clock = std::chrono::steady_clock;

using Result = zshard::testing::ShellResult;

Result sh(const std::string& command) {
  return zshard::testing::runShell(command);
}

const std::string kZlaunch = ZLAUNCH_PATH;
const std::string kProbe = PROBE_PATH;

int countLines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(ZlaunchLaunch, FourWorkersGetDistinctRanksAndAllreduce) {
  const Result r = sh(kZlaunch + " --nproc-per-node 4 " + kProbe);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (int rank = 0; rank < 4; ++rank) {
    EXPECT_NE(
        r.output.find("[rank " + std::to_string(rank) + "] probe rank " + std::to_string(rank) +
                      " of 4 local " + std::to_string(rank) + "/4 node 0/1 source zlaunch ok"),
        std::string::npos)
        << r.output;
  }
}

TEST(ZlaunchLaunch, FailingWorkerStopsTheJobWithOneRootCauseLine) {
  const Result f =
      sh(kZlaunch + " --nproc-per-node 3 --grace-period 2 " + kProbe + " --fail-rank 2 --code 3");
  EXPECT_EQ(f.exit_code, 1) << f.output;
  EXPECT_LT(f.seconds, 10.0);
  EXPECT_EQ(countLines(f.output, "zlaunch: job failed:"), 1) << f.output;
  EXPECT_NE(
      f.output.find(
          "zlaunch: job failed: rank 2 (node 0, local rank 2) ended with exit code 3; last stderr "
          "lines:\n  probe rank 2 failing on purpose with code 3"),
      std::string::npos)
      << f.output;
}

TEST(ZlaunchLaunch, FailureStopsSleepingPeersAndLeavesNoProcess) {
  // Rank 0 fails at once; ranks 1-3 would sleep 30 s: zlaunch must stop them.
  const std::string marker = "--sleep 30.4242";
  const Result r =
      sh(kZlaunch +
         " --nproc-per-node 4 --grace-period 1 sh -c 'if [ $RANK = 0 ]; then exit 5; fi; exec " +
         kProbe + " " + marker + "'");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_LT(r.seconds, 10.0) << r.output;
  EXPECT_NE(r.output.find("rank 0 (node 0, local rank 0) ended with exit code 5"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(leftovers(marker), 0);
}

TEST(ZlaunchLaunch, SigtermEndsAllWorkersWithinTheGracePeriod) {
  const std::string marker = "--sleep 30.777";
  const pid_t pid = fork();
  if (pid == 0) {
    execl(kZlaunch.c_str(), "zlaunch", "--nproc-per-node", "3", "--grace-period", "1",
          kProbe.c_str(), "--sleep", "30.777", nullptr);
    _exit(127);
  }
  // The workers, and zlaunch (its argv has the marker too), once all started.
  for (int i = 0; i < 250 && leftovers(marker) < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(leftovers(marker), 3 + 1);
  const auto t0 = Clock::now();
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 3.0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  EXPECT_EQ(leftovers(marker), 0);
}

TEST(ZlaunchLaunch, HangIsReportedWithTheRanksBehind) {
  const Result r =
      sh(kZlaunch + " --nproc-per-node 3 --grace-period 1 " + kProbe + " --stuck 1 --timeout 2");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_LT(r.seconds, 20.0);
  EXPECT_EQ(countLines(r.output, "zlaunch: job failed:"), 1) << r.output;
  EXPECT_NE(
      r.output.find(
          "the runtime reported a hang: allReduce #0 (2 x fp32) (communicator gloo) timed out on "
          "rank"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ranks that never reached it (behind, hung or dead): 1"),
            std::string::npos)
      << r.output;
}

TEST(ZlaunchLaunch, RestartSucceedsOnTheSecondAttempt) {
  const Result r =
      sh(kZlaunch + " --nproc-per-node 3 --max-restarts 1 " + kProbe + " --fail-first-attempt 1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("zlaunch: restarting the job in 1 s (restart 1 of 1)"), std::string::npos)
      << r.output;
  EXPECT_GE(r.seconds, 1.0);                                     // backed off before the restart
  EXPECT_EQ(countLines(r.output, "of 3 local"), 3) << r.output;  // the second attempt's ranks
  const Result no = sh(kZlaunch + " --nproc-per-node 3 " + kProbe + " --fail-first-attempt 1");
  EXPECT_EQ(no.exit_code, 1) << no.output;
}

TEST(ZlaunchLaunch, HostfileAndIncludeSelectThisHostsSlots) {
  char name[256] = {0};
  gethostname(name, sizeof name - 1);
  const std::string hostfile = "/tmp/zshard_hostfile_" + std::to_string(getpid());
  sh("printf '" + std::string(name) + " slots=4\n' > " + hostfile);
  const Result r =
      sh(kZlaunch + " --hostfile " + hostfile + " --include " + name +
         ":1,3 sh -c 'echo devices=$CUDA_VISIBLE_DEVICES local=$LOCAL_RANK/$LOCAL_WORLD_SIZE'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("devices=1,3 local=0/2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("devices=1,3 local=1/2"), std::string::npos) << r.output;
  const Result other = sh("printf 'elsewhere slots=2\n' > " + hostfile + "; " + kZlaunch +
                          " --hostfile " + hostfile + " true");
  EXPECT_EQ(other.exit_code, 2) << other.output;
  EXPECT_NE(other.output.find("is not among the selected hosts (elsewhere)"), std::string::npos)
      << other.output;
  sh("rm -f " + hostfile);
}

TEST(ZlaunchLaunch, LogDirGetsOneFilePerRank) {
  const std::string dir = "/tmp/zshard_logs_" + std::to_string(getpid());
  Result r = sh(kZlaunch + " --nproc-per-node 2 --log-dir " + dir + " " + kProbe);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("[rank 0]"), std::string::npos)
      << "without --tee nothing goes to the console";
  EXPECT_NE(sh("cat " + dir + "/rank1.log").output.find("probe rank 1 of 2"), std::string::npos);
  r = sh(kZlaunch + " --nproc-per-node 2 --tee --log-dir " + dir + " " + kProbe);
  EXPECT_NE(r.output.find("[rank 0] probe rank 0 of 2"), std::string::npos) << r.output;
  sh("rm -rf " + dir);
}

TEST(ZlaunchLaunch, IntruderWithoutTheTokenIsRefusedAndTheJobGoesOn) {
  const Result r = sh(kZlaunch + " --nproc-per-node 2 " + kProbe + " --intruder");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("intruder refused"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("store server: refused client"), std::string::npos) << r.output;
}

TEST(ZlaunchLaunch, TwoControllersOverPmixUnderMpirun) {
  if (sh("command -v mpirun").exit_code != 0) GTEST_SKIP() << "mpirun not installed";
  const Result r = sh("mpirun --allow-run-as-root --oversubscribe -np 2 --mca btl self,tcp " +
                      kZlaunch + " --nproc-per-node 2 " + kProbe);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::set<std::string> ranks;
  for (int rank = 0; rank < 4; ++rank) {
    if (r.output.find("probe rank " + std::to_string(rank) + " of 4") != std::string::npos) {
      ranks.insert(std::to_string(rank));
    }
  }
  EXPECT_EQ(ranks.size(), 4u) << r.output;
  EXPECT_NE(r.output.find("node 1/2 source zlaunch ok"), std::string::npos) << r.output;
}

TEST(ZlaunchLaunch, ExplicitTwoNodeFailureOnNodeOneStopsNodeZero) {
  const std::string port = std::to_string(20000 + getpid() % 20000);
  const std::string common = "ZSHARD_JOB_TOKEN=t0ken " + kZlaunch + " --nnodes 2 --master-port " +
                             port + " --nproc-per-node 2 --grace-period 1 ";
  const Result r = sh(common + "--node-rank 0 " + kProbe + " --fail-rank 3 --code 7 & " + common +
                      "--node-rank 1 " + kProbe +
                      " --fail-rank 3 --code 7; echo node1=$?; wait %1; echo node0=$?");
  EXPECT_NE(r.output.find("rank 3 (node 1, local rank 1) ended with exit code 7"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("node1=1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("node0=1"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 10.0);
}

}  // namespace
