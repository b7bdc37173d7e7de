#include "runtime/checkpoint/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/core/error.h"

#include "tests/support/temp_dir.h"

namespace zshard::checkpoint {
namespace {

namespace fs = std::filesystem;

class AtomicFile : public testing::TempDirTest {
 protected:
  AtomicFile() : TempDirTest("zshard_atomic_") {}
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(dir_);
  }
};

TEST_F(AtomicFile, WritesReplacesAndLeavesNoTemporary) {
  writeFileAtomically(file("shard"), "first");
  writeFileAtomically(file("shard"), std::string("second\0binary", 13));
  EXPECT_EQ(readFile(file("shard")), std::string("second\0binary", 13));
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_))
    entries += e.path().filename() == "shard" ? 1 : 100;
  EXPECT_EQ(entries, 1);
}

// A writer killed in the middle leaves the previous content intact.
TEST_F(AtomicFile, KilledWriterLeavesThePreviousFile) {
  writeFileAtomically(file("shard"), "previous");
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string big(256 << 20, 'x');  // long enough to be killed during the write
    writeFileAtomically(file("shard"), big);
    _exit(0);
  }
  usleep(20000);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  EXPECT_EQ(readFile(file("shard")), "previous");
}

TEST_F(AtomicFile, ErrorsNameThePath) {
  EXPECT_THROW(readFile(file("missing")), IoError);
  try {
    writeFileAtomically(file("no/such/dir/shard"), "x");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir/shard"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zshard::checkpoint
