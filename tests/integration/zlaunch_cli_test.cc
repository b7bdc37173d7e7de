// Runs the real zlaunch binary as a user would and checks exit codes and output.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/support/shell.h"

namespace {

using Result = zshard::testing::ShellResult;

Result zlaunch(const std::string& args) {
  return zshard::testing::runShell(std::string(ZLAUNCH_PATH) + " " + args);
}

std::string writeTemp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("zshard_cli_test_" + name);
  std::ofstream(path) << text;
  return path.string();
}

TEST(ZlaunchCli, VersionReportsEveryComponent) {
  const Result r = zlaunch("--version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("zshard ", 0), 0u) << r.output;
  for (const char* line : {"CUDA: ", "NCCL: ", "PMIx: yes", "Gloo: yes"}) {
    EXPECT_NE(r.output.find(line), std::string::npos) << line << "\n" << r.output;
  }
}

// Every sample passes but the one with an unfilled HuggingFace "auto"
// (tests/python/test_real_models.py: initialize() says the same).
TEST(ZlaunchCli, EverySampleConfigPassesCheckConfig) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(ZSHARD_SOURCE_DIR "/configs")) {
    if (entry.path().extension() != ".json") continue;
    ++count;
    const std::string name = entry.path().filename().string();
    const Result r = zlaunch("check-config --world-size 8 " + entry.path().string());
    if (name == "hf_auto.json") {
      EXPECT_EQ(r.exit_code, 2) << r.output;
      EXPECT_NE(r.output.find("\"auto\" has no value here"), std::string::npos) << r.output;
      continue;
    }
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(": OK\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("zero: stage "), std::string::npos) << r.output;
  }
  EXPECT_GE(count, 6);
  const Result hf = zlaunch("check-config --allow-auto " ZSHARD_SOURCE_DIR "/configs/hf_auto.json");
  EXPECT_EQ(hf.exit_code, 0) << hf.output;
  EXPECT_NE(hf.output.find("auto (resolved at initialize): train_batch_size"), std::string::npos)
      << hf.output;
}

// --log-dir that cannot hold the ranks' logs (a file, an unwritable
// directory) is refused before anything starts, instead of losing all
// output with exit code 0.
TEST(ZlaunchCli, ALogDirThatCannotBeWrittenIsRefusedBeforeStarting) {
  const std::string file = writeTemp("not_a_dir", "x");
  const std::string script = writeTemp("never_log.py", "print('WORKER RAN')\n");
  for (const std::string& dir : {file, file + "/below"}) {
    const Result r = zlaunch("--nproc-per-node 1 --log-dir " + dir + " " + script);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("--log-dir " + dir + ": expected a directory zlaunch can write"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("WORKER RAN"), std::string::npos) << r.output;
  }
}

// check-config on what is no config file returns at once (a FIFO used to
// wait forever for a writer).
TEST(ZlaunchCli, CheckConfigOnAFifoOrDeviceReturnsAtOnce) {
  const std::string fifo = writeTemp("cfg_fifo_placeholder", "");
  std::remove(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& path : {fifo, std::string("/dev/zero")}) {
    const Result r = zlaunch("check-config " + path);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("not a regular file"), std::string::npos) << r.output;
  }
  // And zlaunch --config: refused before any worker reads it.
  const Result launch = zlaunch("--nproc-per-node 1 --config /dev/zero /bin/true");
  EXPECT_EQ(launch.exit_code, 2) << launch.output;
  EXPECT_NE(launch.output.find("not a regular file"), std::string::npos) << launch.output;
  std::remove(fifo.c_str());
}

// zlaunch --config validates before it starts anything: exit 2, one line
// per problem, no worker output.
TEST(ZlaunchCli, LaunchWithABadConfigExitsTwoBeforeStartingWorkers) {
  const std::string path = writeTemp("bad_launch.json", R"({"train_batch_size": 8,
    "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "nvme", "nvme_path": "/x"}}})");
  const std::string script = writeTemp("never.py", "print('WORKER RAN')\n");
  const Result r = zlaunch("--nproc-per-node 2 --config " + path + " " + script);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("error: zero_optimization.offload_optimizer.device: \"nvme\": NVMe "
                          "offload (ZeRO-Infinity) is not supported yet"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("WORKER RAN"), std::string::npos) << r.output;
  const Result missing = zlaunch("--config /nonexistent/ds.json " + script);
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("a readable config file"), std::string::npos) << missing.output;
}

TEST(ZlaunchCli, BadConfigExitsTwoWithOneLinePerProblem) {
  const std::string path = writeTemp("bad.json", R"({"train_batch_size": 8,
    "zero_optimization": {"stage": 4, "overlap_comms": true}})");
  const Result r = zlaunch("check-config " + path);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("error: zero_optimization.stage: expected 0..3, got 4\n"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("error: zero_optimization.overlap_comms: unknown key; did you mean "
                          "\"overlap_comm\"?\n"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(": 2 problems"), std::string::npos) << r.output;
}

TEST(ZlaunchCli, BatchSizesAreCheckedAgainstWorldSize) {
  const std::string path =
      writeTemp("batch.json", R"({"train_batch_size": 64, "train_micro_batch_size_per_gpu": 4})");
  Result r = zlaunch("check-config --world-size 8 " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("train_batch_size 64 = micro 4 x accumulation 2 x world 8"),
            std::string::npos)
      << r.output;
  r = zlaunch("check-config --world-size 3 " + path);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("error: train_batch_size: expected a multiple of"), std::string::npos)
      << r.output;
}

TEST(ZlaunchCli, MalformedJsonNamesLineAndColumn) {
  const std::string path = writeTemp("broken.json", "{\n  \"train_batch_size\": 8,\n}\n");
  const Result r = zlaunch("check-config " + path);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("error: malformed JSON: line 3, column 1"), std::string::npos)
      << r.output;
}

TEST(ZlaunchCli, MissingFileAndBadOptionsExitTwo) {
  Result r = zlaunch("check-config /nonexistent/ds.json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("/nonexistent/ds.json"), std::string::npos) << r.output;
  r = zlaunch("--frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown option --frobnicate"), std::string::npos) << r.output;
}

}  // namespace
